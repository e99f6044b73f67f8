package analyze

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// op is one request of a test trace.
type op struct {
	sec    int64
	cmd    string
	key    string
	vlen   int64
	ttl    int64
	result string
}

func (o op) line() string {
	return fmt.Sprintf("%d.%06d 127.0.0.1:1 %s %s 0 %d %d %s 10", o.sec, 0, o.cmd, o.key, o.vlen, o.ttl, o.result)
}

func logOf(ops []op) string {
	var b strings.Builder
	b.WriteString(Header + "\n")
	for _, o := range ops {
		b.WriteString(o.line())
		b.WriteByte('\n')
	}
	return b.String()
}

// analyzeOps runs ops through a new Analyzer.
func analyzeOps(t *testing.T, cfg Config, ops []op) *Report {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Read(strings.NewReader(logOf(ops)), "test"); err != nil {
		t.Fatal(err)
	}
	r, err := a.Report()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// zipfTrace is a look-aside trace: gets of Zipf-popular keys, each miss
// followed by a set, value sizes fixed per key, no deletes or TTLs. The
// logged results assume an infinite cache.
func zipfTrace(n int, keys uint64, skew float64, seed uint64) []op {
	rng := rand.New(rand.NewPCG(seed, 7))
	z := rand.NewZipf(rng, skew, 1, keys-1)
	have := map[uint64]bool{}
	var ops []op
	sec := int64(1700000000)
	for len(ops) < n {
		k := z.Uint64()
		if rng.IntN(50) == 0 {
			sec++
		}
		key := fmt.Sprintf("k%d", k)
		vlen := int64(10 + (k*37)%500)
		if have[k] {
			ops = append(ops, op{sec, "get", key, vlen, 0, "hit"})
			continue
		}
		ops = append(ops, op{sec, "get", key, 0, 0, "miss"}, op{sec, "set", key, vlen, 0, "stored"})
		have[k] = true
	}
	return ops
}

func synthLog(t testing.TB, cfg SynthConfig) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Synth(&b, cfg); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
