package fanout

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestBucketsCoverValuesInOrder(t *testing.T) {
	t.Parallel()
	prevHigh := int64(-1)
	for i := range numBuckets {
		high := bucketHigh(i)
		if high <= prevHigh {
			t.Fatalf("bucket %d high %d not above bucket %d's %d", i, high, i-1, prevHigh)
		}
		// The lowest and highest values of a bucket map back to it.
		testutil.Equal(t, fmt.Sprintf("bucket of %d, the lowest value of bucket %d", prevHigh+1, i), i, bucketOf(prevHigh+1))
		testutil.Equal(t, fmt.Sprintf("bucket of %d, the highest value of bucket %d", high, i), i, bucketOf(high))
		// Below 0.8% wide: the precision the reports rely on.
		if low := prevHigh + 1; low >= linearLimit && float64(high-low) > 0.008*float64(low) {
			t.Fatalf("bucket %d [%d, %d] wider than 0.8%%", i, low, high)
		}
		prevHigh = high
	}
	if prevHigh != maxRecordable {
		t.Fatalf("last bucket ends at %d, want %d", prevHigh, maxRecordable)
	}
	testutil.Equal(t, "bucket of a negative value", 0, bucketOf(-5))
	testutil.Equal(t, "bucket of a value beyond the range", numBuckets-1, bucketOf(1<<50))
}

func TestPercentilesMatchSortedSamples(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential mean 1ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"small exact values", func() time.Duration { return time.Duration(rng.Int64N(200)) }},
		{"long tail", func() time.Duration {
			if rng.IntN(1000) == 0 {
				return time.Duration(rng.Int64N(int64(5 * time.Second)))
			}
			return time.Duration(rng.Int64N(int64(time.Millisecond)))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]time.Duration, 100_000)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			s := h.Snapshot()
			testutil.Equal(t, "count, min and max", extremes{uint64(len(vals)), vals[0], vals[len(vals)-1]}, extremes{s.Count, s.Min, s.Max})
			for _, p := range []float64{0, 50, 90, 99, 99.9, 100} {
				rank := max(int(p*float64(len(vals))/100+0.999), 1) // exact for these p and sizes
				exact := vals[rank-1]
				got := s.Percentile(p)
				// An upper bound of the exact value, within one bucket.
				if got < exact || float64(got-exact) > 0.008*float64(exact)+1 {
					t.Errorf("p%v = %v, exact %v", p, got, exact)
				}
			}
		})
	}
}

func TestHistogramEmptyAndConcurrent(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	empty := h.Snapshot()
	testutil.Equal(t, "p99 of an empty histogram", time.Duration(0), empty.Percentile(99))
	testutil.Equal(t, "mean of an empty histogram", time.Duration(0), empty.Mean())
	testutil.Equal(t, "min of an empty histogram", time.Duration(0), empty.Min)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	testutil.Equal(t, "count, min and max", extremes{8000, 0, 7999 * time.Microsecond}, extremes{s.Count, s.Min, s.Max})
	sum := s.Summary()
	if sum.P50 < 3.99 || sum.P50 > 4.04 {
		t.Errorf("summary p50 %v ms, want 3.99-4.04", sum.P50)
	}
	testutil.Equal(t, "summary max (ms)", 7.999, sum.Max)
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		frame       string
		off         uint64
		sched, star int64
		ok          bool
	}{
		{"server order", `{"type":"event","event":{"id":"abc123-42","channel":"session:x","type":"bench","data":{"t":1700000000000000001,"r":1700000000000000002,"s":"0.1"},"ts":"2026-01-01T00:00:00Z"}}`,
			42, 1700000000000000001, 1700000000000000002, true},
		{"other field order", `{"event":{"data":{"s":"0.1","r":7,"t":5},"id":"e-9","type":"bench"},"type":"event"}`, 9, 5, 7, true},
		{"not ours", `{"type":"event","event":{"id":"e-1","data":{"imageId":"x"}}}`, 0, 0, 0, false},
		{"bad id", `{"type":"event","event":{"id":"nodash","data":{"t":1,"r":2}}}`, 0, 0, 0, false},
	}
	type parsed struct {
		Off          uint64
		Sched, Start int64
		OK           bool
	}
	for _, tc := range cases {
		off, sched, start, ok := parseEvent([]byte(tc.frame))
		testutil.Check(t, tc.name, parsed{tc.off, tc.sched, tc.star, tc.ok}, parsed{off, sched, start, ok})
	}
}

// extremes is what a histogram snapshot knows exactly.
type extremes struct {
	Count    uint64
	Min, Max time.Duration
}
