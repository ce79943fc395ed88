package fanout

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
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
		if bucketOf(prevHigh+1) != i || bucketOf(high) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf gives %d and %d", i, prevHigh+1, high, bucketOf(prevHigh+1), bucketOf(high))
		}
		// Below 0.8% wide: the precision the reports rely on.
		if low := prevHigh + 1; low >= linearLimit && float64(high-low) > 0.008*float64(low) {
			t.Fatalf("bucket %d [%d, %d] wider than 0.8%%", i, low, high)
		}
		prevHigh = high
	}
	if prevHigh != maxRecordable {
		t.Fatalf("last bucket ends at %d, want %d", prevHigh, maxRecordable)
	}
	if bucketOf(-5) != 0 || bucketOf(1<<50) != numBuckets-1 {
		t.Fatal("out-of-range values are not clamped")
	}
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
			if s.Count != uint64(len(vals)) || s.Max != vals[len(vals)-1] || s.Min != vals[0] {
				t.Fatalf("count/min/max %d/%v/%v, want %d/%v/%v", s.Count, s.Min, s.Max, len(vals), vals[0], vals[len(vals)-1])
			}
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
	if s := h.Snapshot(); s.Percentile(99) != 0 || s.Mean() != 0 || s.Min != 0 {
		t.Fatalf("empty histogram: %+v", s.Summary())
	}
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
	if s.Count != 8000 || s.Max != 7999*time.Microsecond || s.Min != 0 {
		t.Fatalf("count %d max %v min %v", s.Count, s.Max, s.Min)
	}
	sum := s.Summary()
	if sum.P50 < 3.99 || sum.P50 > 4.04 || sum.Max != 7.999 {
		t.Fatalf("summary %+v", sum)
	}
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
	for _, tc := range cases {
		off, sched, start, ok := parseEvent([]byte(tc.frame))
		if ok != tc.ok || off != tc.off || sched != tc.sched || start != tc.star {
			t.Errorf("%s: got %d %d %d %v", tc.name, off, sched, start, ok)
		}
	}
}
