package main

import (
	"strings"
	"testing"

	"petrel/internal/bench"
)

func TestMedianRatio(t *testing.T) {
	run := func(server string, round int, ops float64) Run {
		return Run{Server: server, Round: round, Result: &bench.Result{OpsPerSec: ops}}
	}
	f := func(mc, pt []float64, want float64) {
		t.Helper()
		per := map[string][]Run{}
		for i, x := range mc {
			per["memcached"] = append(per["memcached"], run("memcached", i, x))
		}
		for i, x := range pt {
			per["petrel"] = append(per["petrel"], run("petrel", i, x))
		}
		if got, _ := medianRatio(per, func(r Run) float64 { return r.Result.OpsPerSec }); got != want {
			t.Errorf("medianRatio(%v, %v) = %v, want %v", mc, pt, got, want)
		}
	}
	f([]float64{100, 100, 100}, []float64{50, 200, 100}, 1)
	f([]float64{100, 200}, []float64{100, 100}, 0.75)
	f([]float64{100}, nil, 0)                   // Petrel did not run
	f([]float64{0, 100}, []float64{5, 50}, 0.5) // a failed memcached round is left out
}

func TestMemcslapTime(t *testing.T) {
	out := `Time to set            2000 keys:                     0.335 seconds.
Time to get          100000 keys by   50 threads:     1.652 seconds.
`
	m := memcslapTime.FindAllStringSubmatch(out, -1)
	if len(m) != 1 || m[0][2] != "100000" || m[0][3] != "1.652" {
		t.Fatalf("memcslap timing parsed as %q", m)
	}
}

func TestMarkdown(t *testing.T) {
	s := &Summary{Name: "m", Matrix: []Row{{Workload: "etc", Throughput: 1.25, ThroughputRounds: []float64{1.2, 1.3},
		Memcached: Side{OpsPerSec: 100}, Petrel: Side{OpsPerSec: 125}}},
		Memory: []MemoryRow{{Server: "memcached", Stored: 10}, {Server: "petrel", Stored: 10, Ratio: 0.5}}}
	md := markdown(s)
	f := func(want string) {
		t.Helper()
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	f("| etc | 100 | 125 | 1.25x (1.20 1.30) |")
	f("| petrel | 0 | 0 | 10 |")
	f("0.50x")
	if svg := string(matrixSVG(s)); !strings.Contains(svg, "<svg") || !strings.Contains(svg, ">etc<") {
		t.Errorf("plot lacks the workload: %s", svg)
	}
}
