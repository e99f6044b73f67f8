package analyze

import (
	"math"
	"math/bits"
)

// Hist is a log-linear histogram of non-negative integers, after
// HdrHistogram: values below 16 have a bucket each, and every power of two
// above is cut into 8 equal sub-buckets, so a bucket is at most 1/8 wide
// relative to its value (quantiles are within 12.5%) and the whole range of
// int64 takes under 500 buckets.
type Hist struct {
	Counts   []uint64
	N        uint64
	Sum      float64
	MinV     int64
	MaxV     int64
	Negative uint64 // values below zero, counted apart
}

const subBits = 3 // 8 sub-buckets per power of two

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v int64) int {
	if v < 16 {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(uint64(v)) // v in [2^e, 2^(e+1))
	sub := int(v>>(e-subBits)) & (1<<subBits - 1)
	return 16 + (e-4)<<subBits + sub
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 16 {
		return int64(i), int64(i)
	}
	e := (i-16)>>subBits + 4
	sub := int64((i - 16) & (1<<subBits - 1))
	w := int64(1) << (e - subBits)
	lo = int64(1)<<e + sub*w
	return lo, lo + w - 1
}

// Add counts one value.
func (h *Hist) Add(v int64) {
	if v < 0 {
		h.Negative++
		return
	}
	i := bucketOf(v)
	for len(h.Counts) <= i {
		h.Counts = append(h.Counts, 0)
	}
	h.Counts[i]++
	if h.N == 0 || v < h.MinV {
		h.MinV = v
	}
	if v > h.MaxV {
		h.MaxV = v
	}
	h.N++
	h.Sum += float64(v)
}

// Quantile returns an upper bound of the q-quantile (0 <= q <= 1): the top
// of the bucket that holds it, capped by the largest value seen.
func (h *Hist) Quantile(q float64) int64 {
	if h.N == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.N)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(max(hi, h.MinV), h.MaxV)
		}
	}
	return h.MaxV
}

// Mean is the average value, 0 when empty.
func (h *Hist) Mean() float64 {
	if h.N == 0 {
		return 0
	}
	return h.Sum / float64(h.N)
}

// Dist is a histogram as reported: summary figures and power-of-two bars.
type Dist struct {
	Count    uint64  `json:"count"`
	Negative uint64  `json:"negative,omitempty"`
	Min      int64   `json:"min"`
	Mean     float64 `json:"mean"`
	P50      int64   `json:"p50"`
	P90      int64   `json:"p90"`
	P99      int64   `json:"p99"`
	P999     int64   `json:"p999"`
	Max      int64   `json:"max"`
	// Bars count values in [Lo, Hi] with Hi+1 a power of two (Lo = 0 for
	// the first bar).
	Bars []Bar `json:"bars"`
}

// Bar is one histogram bar.
type Bar struct {
	Lo    int64  `json:"lo"`
	Hi    int64  `json:"hi"`
	Count uint64 `json:"count"`
}

// Dist summarises h.
func (h *Hist) Dist() Dist {
	d := Dist{Count: h.N, Negative: h.Negative, Min: h.MinV, Mean: h.Mean(), Max: h.MaxV,
		P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99), P999: h.Quantile(0.999)}
	if h.N == 0 {
		return d
	}
	// Buckets never straddle a power of two, so they sum exactly into
	// power-of-two bars: [0,0], [1,1], [2,3], [4,7], ...
	for i, c := range h.Counts {
		lo, _ := bucketRange(i)
		b := 0
		if lo > 0 {
			b = bits.Len64(uint64(lo))
		}
		for len(d.Bars) <= b {
			k := len(d.Bars)
			bar := Bar{}
			if k > 0 {
				bar.Lo, bar.Hi = int64(1)<<(k-1), int64(1)<<k-1
			}
			d.Bars = append(d.Bars, bar)
		}
		d.Bars[b].Count += c
	}
	first := 0
	for first < len(d.Bars) && d.Bars[first].Count == 0 {
		first++
	}
	d.Bars = d.Bars[first:]
	return d
}
