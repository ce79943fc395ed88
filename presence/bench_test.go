package presence

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkApply measures one ENTER/UPDATE and one LEAVE per iteration on
// each registry of the table (memory here; Redis with the integration tag),
// with one subscriber on the channel.
func BenchmarkApply(b *testing.B) {
	for _, f := range registryTable {
		b.Run(f.name, func(b *testing.B) {
			r := f.open(b)
			cancel := r.Subscribe("bench", func(Event) {})
			defer cancel()
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				conn := "c" + strconv.Itoa(i%64)
				if _, _, err := r.Apply(ctx, change(Enter, "bench", conn, "bob", conn+":0:0", `{"device":"phone"}`)); err != nil {
					b.Fatal(err)
				}
				if _, _, err := r.Apply(ctx, change(Leave, "bench", conn, "bob", conn+":1:0", "")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
