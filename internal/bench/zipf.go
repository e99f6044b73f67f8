package bench

import "math"

// Zipf draws ranks 1..n with P(k) ∝ k^-s, for any s > 0 (math/rand's Zipf
// needs s > 1, and workloads are usually fitted with s near 1). It uses
// rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to
// generate variates from monotone discrete distributions", 1996): O(1) per
// draw, no table, and fewer than two uniforms per draw on average.
type Zipf struct {
	n, s             float64
	hx1, hn, squeeze float64
}

// NewZipf returns a sampler over 1..n with exponent s > 0.
func NewZipf(n int, s float64) *Zipf {
	z := &Zipf{n: float64(n), s: s}
	z.hx1 = z.hIntegral(1.5) - 1
	z.hn = z.hIntegral(z.n + 0.5)
	z.squeeze = 2 - z.hIntegralInv(z.hIntegral(2.5)-z.h(2))
	return z
}

// Rank maps uniform variates to a rank in 1..n; next supplies more uniforms
// when the first is rejected.
func (z *Zipf) Rank(next func() float64) int {
	for {
		u := z.hn + next()*(z.hx1-z.hn)
		x := z.hIntegralInv(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > z.n {
			k = z.n
		}
		if k-x <= z.squeeze || u >= z.hIntegral(k+0.5)-z.h(k) {
			return int(k)
		}
	}
}

// Prob is the model probability of rank k, for tests; it sums the
// normalising constant, so it costs O(n).
func (z *Zipf) Prob(k int) float64 {
	var h float64
	for i := 1; i <= int(z.n); i++ {
		h += math.Pow(float64(i), -z.s)
	}
	return math.Pow(float64(k), -z.s) / h
}

func (z *Zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

// hIntegral is ∫h, written with helpers that stay accurate as s → 1.
func (z *Zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return helper2((1-z.s)*lx) * lx
}

func (z *Zipf) hIntegralInv(x float64) float64 {
	t := x * (1 - z.s)
	if t < -1 {
		t = -1 // rounding could take log1p out of its domain
	}
	return math.Exp(helper1(t) * x)
}

// helper1 is log1p(x)/x, helper2 is expm1(x)/x, both continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x/3*(1+0.25*x))
}
