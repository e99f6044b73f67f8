package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// A Dist is a distribution of sizes (bytes) or TTLs (seconds), given by its
// quantile function (inverse CDF). Sampling is then Quantile of a uniform
// variate, and a key can keep one size for the whole run by deriving that
// variate from a hash of its id.
type Dist interface {
	// Quantile returns the smallest value v with P(X <= v) >= u, for u in (0, 1).
	Quantile(u float64) float64
	String() string
}

// Fixed is a constant.
type Fixed float64

func (f Fixed) Quantile(float64) float64 { return float64(f) }
func (f Fixed) String() string           { return fmt.Sprintf("fixed:%g", float64(f)) }

// Uniform is uniform over the integers Lo..Hi inclusive.
type Uniform struct{ Lo, Hi float64 }

func (d Uniform) Quantile(u float64) float64 {
	return math.Min(d.Hi, math.Floor(d.Lo+u*(d.Hi-d.Lo+1)))
}
func (d Uniform) String() string { return fmt.Sprintf("uniform:%g,%g", d.Lo, d.Hi) }

// GEV is the generalized extreme value distribution with location Mu, scale
// Sigma and shape K, as mutilate writes it; ETC's key sizes follow it.
type GEV struct{ Mu, Sigma, K float64 }

func (d GEV) Quantile(u float64) float64 {
	l := -math.Log(u)
	if d.K == 0 {
		return d.Mu - d.Sigma*math.Log(l)
	}
	return d.Mu + d.Sigma*(math.Pow(l, -d.K)-1)/d.K
}
func (d GEV) String() string { return fmt.Sprintf("gev:%g,%g,%g", d.Mu, d.Sigma, d.K) }

// Mean is the model mean μ + σ(Γ(1-k)-1)/k, finite for k < 1.
func (d GEV) Mean() float64 {
	if d.K == 0 {
		return d.Mu + d.Sigma*0.5772156649015329 // Euler–Mascheroni
	}
	return d.Mu + d.Sigma*(math.Gamma(1-d.K)-1)/d.K
}

// GPD is the generalized Pareto distribution with location Theta, scale
// Sigma and shape K; ETC's value sizes above 14 bytes follow it.
type GPD struct{ Theta, Sigma, K float64 }

func (d GPD) Quantile(u float64) float64 {
	if d.K == 0 {
		return d.Theta - d.Sigma*math.Log(1-u)
	}
	return d.Theta + d.Sigma*(math.Pow(1-u, -d.K)-1)/d.K
}
func (d GPD) String() string { return fmt.Sprintf("gpd:%g,%g,%g", d.Theta, d.Sigma, d.K) }

// Mean is θ + σ/(1-k), finite for k < 1.
func (d GPD) Mean() float64 { return d.Theta + d.Sigma/(1-d.K) }

// Discrete takes Values[i] with probability Probs[i]; the remaining mass
// 1-ΣProbs goes to Rest. This is mutilate's "Discrete" generator.
type Discrete struct {
	Values []float64
	Probs  []float64
	Rest   Dist
	cum    []float64
}

func newDiscrete(values, probs []float64, rest Dist) *Discrete {
	d := &Discrete{Values: values, Probs: probs, Rest: rest}
	var c float64
	for _, p := range probs {
		c += p
		d.cum = append(d.cum, c)
	}
	return d
}

func (d *Discrete) Quantile(u float64) float64 {
	i := sort.SearchFloat64s(d.cum, u)
	if i < len(d.cum) {
		return d.Values[i]
	}
	// Rescale the leftover mass to (0,1) for the continuous part.
	total := d.cum[len(d.cum)-1]
	return d.Rest.Quantile((u - total) / (1 - total))
}
func (d *Discrete) String() string { return "discrete" }

// Quantiles interpolates between known quantile points, linearly in the log
// of the value: it reproduces published medians and quartiles exactly when
// only those are known.
type Quantiles struct {
	Name string
	P, V []float64 // P ascending from 0 to 1; V > 0 ascending
}

func (d Quantiles) Quantile(u float64) float64 {
	i := sort.SearchFloat64s(d.P, u)
	if i == 0 {
		return d.V[0]
	}
	if i >= len(d.P) {
		return d.V[len(d.V)-1]
	}
	f := (u - d.P[i-1]) / (d.P[i] - d.P[i-1])
	lo, hi := math.Log(d.V[i-1]), math.Log(d.V[i])
	return math.Round(math.Exp(lo + f*(hi-lo)))
}
func (d Quantiles) String() string { return d.Name }

// The ETC pool (Atikoglu et al., SIGMETRICS'12) with mutilate's constants.
var (
	ETCKey   = GEV{Mu: 30.7984, Sigma: 8.20449, K: 0.078688}
	ETCValue = newDiscrete(
		[]float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		[]float64{0.00536, 0.00047, 0.17820, 0.09239, 0.00018, 0.02740, 0.00065,
			0.00606, 0.00023, 0.00837, 0.00837, 0.08989, 0.00092, 0.00326, 0.01980},
		GPD{Theta: 0, Sigma: 214.476, K: 0.348238})
)

// Twitter's 2020 traces (Yang et al., OSDI'20, twitter/cache-trace) publish
// medians and quartiles across clusters: keys 22/36/44 B, values 83/224/1074
// B. The tails beyond the quartiles are our assumption, chosen to be
// plausible for a cache of small objects.
var (
	TwitterKey = Quantiles{Name: "twitter-key",
		P: []float64{0, 0.25, 0.5, 0.75, 0.99, 1},
		V: []float64{10, 22, 36, 44, 100, 200}}
	TwitterValue = Quantiles{Name: "twitter-value",
		P: []float64{0, 0.25, 0.5, 0.75, 0.99, 1},
		V: []float64{1, 83, 224, 1074, 16384, 102400}}
	// TwitterTTL spans 20 s to 30 days, log-uniformly.
	TwitterTTL = Quantiles{Name: "twitter-ttl",
		P: []float64{0, 1}, V: []float64{20, 30 * 24 * 3600}}
)

// ParseDist reads a distribution spec: a number, "fixed:N", "uniform:A,B",
// "gev:MU,SIGMA,K", "gpd:THETA,SIGMA,K", "loguniform:A,B", or one of the
// models "etc-key", "etc-value", "twitter-key", "twitter-value",
// "twitter-ttl".
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "etc-key":
		return ETCKey, nil
	case "etc-value":
		return ETCValue, nil
	case "twitter-key":
		return TwitterKey, nil
	case "twitter-value":
		return TwitterValue, nil
	case "twitter-ttl":
		return TwitterTTL, nil
	}
	name, args, ok := strings.Cut(s, ":")
	if !ok {
		name, args = "fixed", s
	}
	var xs []float64
	for _, a := range strings.Split(args, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(a), 64)
		if err != nil {
			return nil, fmt.Errorf("distribution %q: %w", s, err)
		}
		xs = append(xs, x)
	}
	want := map[string]int{"fixed": 1, "uniform": 2, "loguniform": 2, "gev": 3, "gpd": 3}
	n, known := want[name]
	if !known {
		return nil, fmt.Errorf("distribution %q: unknown kind %q", s, name)
	}
	if len(xs) != n {
		return nil, fmt.Errorf("distribution %q: %s takes %d numbers", s, name, n)
	}
	switch name {
	case "fixed":
		return Fixed(xs[0]), nil
	case "uniform":
		if xs[1] < xs[0] {
			return nil, fmt.Errorf("distribution %q: empty range", s)
		}
		return Uniform{xs[0], xs[1]}, nil
	case "loguniform":
		if xs[0] <= 0 || xs[1] < xs[0] {
			return nil, fmt.Errorf("distribution %q: need 0 < A <= B", s)
		}
		return Quantiles{Name: s, P: []float64{0, 1}, V: []float64{xs[0], xs[1]}}, nil
	case "gev":
		return GEV{xs[0], xs[1], xs[2]}, nil
	default:
		return GPD{xs[0], xs[1], xs[2]}, nil
	}
}

// sizeOf maps a distribution sample to a size in [lo, hi].
func sizeOf(d Dist, u float64, lo, hi int) int {
	v := d.Quantile(u)
	if math.IsNaN(v) || v < float64(lo) {
		return lo
	}
	if v > float64(hi) {
		return hi
	}
	return int(math.Round(v))
}
