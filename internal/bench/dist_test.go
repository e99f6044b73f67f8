package bench

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// sample draws n values of d through its quantile function, sorted.
func sample(d Dist, n int) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = d.Quantile(r.Float64())
	}
	sort.Float64s(xs)
	return xs
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func within(got, want, relTol float64) bool {
	return math.Abs(got-want) <= relTol*math.Abs(want)
}

func TestDistQuantiles(t *testing.T) {
	const n = 200000
	// f checks the sampled q-quantile against the model's value.
	f := func(d Dist, q, want, tol float64) {
		t.Helper()
		xs := sample(d, n)
		if got := xs[int(q*float64(n))]; !within(got, want, tol) {
			t.Errorf("%v: sampled q%.2f = %.2f, model %.2f", d, q, got, want)
		}
	}
	// GEV quantile: μ + σ((-ln q)^-k - 1)/k.
	gevQ := func(q float64) float64 {
		return ETCKey.Mu + ETCKey.Sigma*(math.Pow(-math.Log(q), -ETCKey.K)-1)/ETCKey.K
	}
	f(ETCKey, 0.5, gevQ(0.5), 0.02)
	f(ETCKey, 0.9, gevQ(0.9), 0.02)
	f(ETCKey, 0.99, gevQ(0.99), 0.03)
	// GPD quantile: σ((1-q)^-k - 1)/k.
	gpd := GPD{0, 214.476, 0.348238}
	gpdQ := func(q float64) float64 { return gpd.Sigma * (math.Pow(1-q, -gpd.K) - 1) / gpd.K }
	f(gpd, 0.5, gpdQ(0.5), 0.03)
	f(gpd, 0.9, gpdQ(0.9), 0.03)
	// ETC values: 44.155% at 0..14 B, so the 40th percentile is 11 B and the
	// 60th is the GPD's (0.6-0.44155)/(1-0.44155) quantile.
	f(ETCValue, 0.40, 11, 0)
	f(ETCValue, 0.60, gpdQ((0.6-0.44155)/(1-0.44155)), 0.03)
	// Twitter: the published median and quartiles.
	f(TwitterKey, 0.25, 22, 0.05)
	f(TwitterKey, 0.5, 36, 0.03)
	f(TwitterKey, 0.75, 44, 0.03)
	f(TwitterValue, 0.25, 83, 0.05)
	f(TwitterValue, 0.5, 224, 0.05)
	f(TwitterValue, 0.75, 1074, 0.05)
	// TTLs: log-uniform from 20 s to 30 days, so the median is the geometric mean.
	f(TwitterTTL, 0.5, math.Sqrt(20*30*24*3600), 0.03)
	f(Uniform{10, 20}, 0.5, 15, 0.07)
	f(Fixed(100), 0.99, 100, 0)
}

func TestDistMeans(t *testing.T) {
	const n = 400000
	f := func(d Dist, want, tol float64) {
		t.Helper()
		if got := mean(sample(d, n)); !within(got, want, tol) {
			t.Errorf("%v: sampled mean %.3f, model %.3f", d, got, want)
		}
	}
	f(ETCKey, ETCKey.Mean(), 0.01)
	f(GPD{0, 214.476, 0.348238}, GPD{0, 214.476, 0.348238}.Mean(), 0.05)
	f(GPD{0, 100, 0}, 100, 0.02)
	f(GEV{10, 2, 0}, GEV{10, 2, 0}.Mean(), 0.01)
	f(Uniform{1, 100}, 50.5, 0.01)
	// ETC values: the discrete head's mean mass plus the GPD tail's.
	var head float64
	for i, p := range ETCValue.Probs {
		head += p * ETCValue.Values[i]
	}
	f(ETCValue, head+(1-0.44155)*GPD{0, 214.476, 0.348238}.Mean(), 0.05)
}

func TestETCValueHead(t *testing.T) {
	var total float64
	for _, p := range ETCValue.Probs {
		total += p
	}
	if math.Abs(total-0.44155) > 1e-9 {
		t.Fatalf("ETC fixed sizes total %v, want 0.44155", total)
	}
	xs := sample(ETCValue, 200000)
	count := func(v float64) float64 {
		return float64(sort.SearchFloat64s(xs, v+0.5)-sort.SearchFloat64s(xs, v-0.5)) / float64(len(xs))
	}
	f := func(size, p float64) {
		t.Helper()
		// Sizes from the GPD's lower tail add a little mass to each integer.
		if got := count(size); got < p-0.005 || got > p+0.02 {
			t.Errorf("P(size=%v) = %.4f, want about %.4f", size, got, p)
		}
	}
	f(2, 0.17820)
	f(3, 0.09239)
	f(11, 0.08989)
}

func TestParseDist(t *testing.T) {
	f := func(spec, want string, ok bool) {
		t.Helper()
		d, err := ParseDist(spec)
		if (err == nil) != ok {
			t.Fatalf("ParseDist(%q) error %v, want ok=%v", spec, err, ok)
		}
		if ok && d.String() != want {
			t.Errorf("ParseDist(%q) = %v, want %v", spec, d, want)
		}
	}
	f("100", "fixed:100", true)
	f("fixed:7", "fixed:7", true)
	f("uniform:1,10", "uniform:1,10", true)
	f("gev:30.7984,8.20449,0.078688", "gev:30.7984,8.20449,0.078688", true)
	f("gpd:0,214.476,0.348238", "gpd:0,214.476,0.348238", true)
	f("etc-value", "discrete", true)
	f("twitter-key", "twitter-key", true)
	f("uniform:10,1", "", false)
	f("gev:1,2", "", false)
	f("normal:1,2", "", false)
	f("fixed:x", "", false)
}

func TestZipf(t *testing.T) {
	const draws = 300000
	f := func(n int, s float64) {
		t.Helper()
		z := NewZipf(n, s)
		r := rand.New(rand.NewPCG(3, 4))
		counts := make([]int, n+1)
		for range draws {
			k := z.Rank(r.Float64)
			if k < 1 || k > n {
				t.Fatalf("zipf(%d,%v) rank %d out of range", n, s, k)
			}
			counts[k]++
		}
		for _, k := range []int{1, 2, 10} {
			got := float64(counts[k]) / draws
			if want := z.Prob(k); !within(got, want, 0.05) {
				t.Errorf("zipf(%d,%v): P(%d) = %.4f, model %.4f", n, s, k, got, want)
			}
		}
	}
	f(1000, 1.0)
	f(1000, 0.99)
	f(100000, 1.28)
	f(50, 0.5)
}
