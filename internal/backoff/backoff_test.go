package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	cases := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{4, 500 * time.Millisecond, time.Second}, // capped
		{1000, 500 * time.Millisecond, time.Second},
	}
	for _, c := range cases {
		for range 200 {
			if d := p.Delay(c.attempt); d < c.lo || d > c.hi {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", c.attempt, d, c.lo, c.hi)
			}
		}
	}
}

func TestDelayIsJittered(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.Delay(2)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 delays took %d distinct values; jitter must spread them", len(seen))
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full wait after its context ended")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep of 1ms did not report a full wait")
	}
}

func TestSpread(t *testing.T) {
	const d = 8 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		got := Spread(d)
		if got <= 6*time.Second || got > d {
			t.Fatalf("Spread(%v) = %v, want in (6s, 8s]", d, got)
		}
		seen[got] = true
	}
	if len(seen) < 900 {
		t.Fatalf("Spread gave %d distinct values in 1000 calls: not spread", len(seen))
	}
	if got := Spread(0); got != 0 {
		t.Fatalf("Spread(0) = %v", got)
	}
}
