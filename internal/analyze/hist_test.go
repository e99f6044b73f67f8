package analyze

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistBuckets(t *testing.T) {
	f := func(v int64, lo, hi int64) {
		t.Helper()
		gotLo, gotHi := bucketRange(bucketOf(v))
		if gotLo != lo || gotHi != hi {
			t.Fatalf("%d: bucket [%d,%d], want [%d,%d]", v, gotLo, gotHi, lo, hi)
		}
	}
	f(0, 0, 0)
	f(15, 15, 15)
	f(16, 16, 17)
	f(17, 16, 17)
	f(31, 30, 31)
	f(32, 32, 35)
	f(1000, 960, 1023)
	f(1024, 1024, 1151)
	f(1<<40+1, 1<<40, 1<<40+1<<37-1)
	f(1<<62, 1<<62, 1<<62+1<<59-1)
	// Every bucket follows the previous one without a gap.
	for i := 1; i < bucketOf(1<<62)+8; i++ {
		lo, _ := bucketRange(i)
		_, prevHi := bucketRange(i - 1)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	f := func(vals []int64, q float64, want int64) {
		t.Helper()
		var h Hist
		for _, v := range vals {
			h.Add(v)
		}
		if got := h.Quantile(q); got != want {
			t.Fatalf("%v q%v = %d, want %d", vals, q, got, want)
		}
	}
	f(nil, 0.5, 0)
	f([]int64{7}, 0.5, 7)
	f([]int64{1, 2, 3, 4}, 0.5, 2)
	f([]int64{1, 2, 3, 4}, 1, 4)
	f([]int64{1, 2, 3, 100}, 0.99, 100)
	f([]int64{100, 100, 100}, 0.5, 100) // capped by the max, not the bucket top 103
	f([]int64{1000, 2000}, 0.5, 1023)   // bucket top: within 1/8
}

func TestHistQuantileError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Hist
	var vals []int64
	for range 10000 {
		v := int64(rng.ExpFloat64() * 5000)
		vals = append(vals, v)
		h.Add(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.125+1 {
			t.Errorf("q%v: %d, exact %d", q, got, exact)
		}
	}
}

func TestHistDistBars(t *testing.T) {
	f := func(vals []int64, want []Bar) {
		t.Helper()
		var h Hist
		for _, v := range vals {
			h.Add(v)
		}
		got := h.Dist().Bars
		if !slices.Equal(got, want) {
			t.Fatalf("%v: bars %v, want %v", vals, got, want)
		}
	}
	f(nil, nil)
	f([]int64{0}, []Bar{{0, 0, 1}})
	f([]int64{0, 1, 2, 3, 4}, []Bar{{0, 0, 1}, {1, 1, 1}, {2, 3, 2}, {4, 7, 1}})
	f([]int64{20, 31, 32}, []Bar{{16, 31, 2}, {32, 63, 1}})
	f([]int64{1000, 1023, 1024, 5000}, []Bar{{512, 1023, 2}, {1024, 2047, 1}, {2048, 4095, 0}, {4096, 8191, 1}})
	var h Hist
	h.Add(-5)
	if d := h.Dist(); d.Negative != 1 || d.Count != 0 {
		t.Fatalf("negative value: %+v", d)
	}
}
