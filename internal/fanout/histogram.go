package fanout

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in a fixed log-linear layout, like
// HdrHistogram with two significant digits: values below 256 ns are exact,
// larger ones fall into buckets less than 0.8% wide, up to maxRecordable.
// Memory is fixed (about 35 KB) however many values are recorded, and
// Record is lock-free, so thousands of receiver goroutines share one.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64 // nanoseconds; 2^63 ns is 292 years, no overflow
	max    atomic.Int64
	min    atomic.Int64 // math.MaxInt64 until the first value
}

const (
	// subBucketBits sets the precision: 2^7 sub-buckets per power of two.
	subBucketBits  = 7
	subBucketCount = 1 << subBucketBits
	// linearLimit: values below it get a bucket each.
	linearLimit = 2 * subBucketCount
	// maxRecordable caps values (about 18 minutes); larger ones are
	// counted as this, and Max still reports the true maximum.
	maxRecordable = 1<<40 - 1
	numBuckets    = linearLimit + (40-subBucketBits-1)*subBucketCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket of v nanoseconds.
func bucketOf(v int64) int {
	switch {
	case v < 0:
		return 0
	case v < linearLimit:
		return int(v)
	case v > maxRecordable:
		v = maxRecordable
	}
	e := bits.Len64(uint64(v)) - (subBucketBits + 1) // >= 1
	m := int(v >> e)                                 // in [128, 256)
	return linearLimit + (e-1)*subBucketCount + m - subBucketCount
}

// bucketHigh returns the largest value that falls into bucket i: reporting
// it makes every percentile an upper bound, never flattering.
func bucketHigh(i int) int64 {
	if i < linearLimit {
		return int64(i)
	}
	j := i - linearLimit
	e := j/subBucketCount + 1
	m := int64(j%subBucketCount + subBucketCount)
	return (m+1)<<e - 1
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(max(v, 0))
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if v >= cur || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
}

// Snapshot is a histogram's state at one moment, for reading percentiles.
type Snapshot struct {
	counts []uint64
	Count  uint64
	Sum    time.Duration
	Min    time.Duration
	Max    time.Duration
}

// Snapshot copies the histogram. Values recorded meanwhile may be partly
// included, which only matters while recording is still going on.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{counts: make([]uint64, numBuckets)}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
		s.Count += s.counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	s.Max = time.Duration(h.max.Load())
	if s.Count > 0 {
		s.Min = time.Duration(h.min.Load())
	}
	return s
}

// Percentile returns the value at or below which p percent of the values
// fall (the nearest-rank definition), as the upper edge of its bucket and
// never above the true maximum. It returns 0 for an empty histogram.
func (s Snapshot) Percentile(p float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	// The epsilon absorbs float error: p99.9 of 100,000 values is rank
	// 99,900, though 99.9/100*1e5 computes as 99,900.00000000001.
	rank := uint64(math.Ceil(p/100*float64(s.Count) - 1e-6))
	rank = min(max(rank, 1), s.Count)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), s.Max)
		}
	}
	return s.Max
}

// Mean returns the average value, or 0 for an empty histogram.
func (s Snapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}

// Summary is a latency distribution as reported, in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary reduces the snapshot to the reported percentiles.
func (s Snapshot) Summary() Summary {
	return Summary{
		Count: s.Count,
		Mean:  ms(s.Mean()),
		P50:   ms(s.Percentile(50)),
		P90:   ms(s.Percentile(90)),
		P99:   ms(s.Percentile(99)),
		P999:  ms(s.Percentile(99.9)),
		Max:   ms(s.Max),
	}
}

// ms converts to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
