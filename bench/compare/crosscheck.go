package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// CrossCheck is the memcslap witness: the same server pair driven by an
// external generator.
type CrossCheck struct {
	Command   string    `json:"command"`
	Memcached []float64 `json:"memcached_ops_per_sec"`
	Petrel    []float64 `json:"petrel_ops_per_sec"`
	Ratio     float64   `json:"ratio"` // median of per-round Petrel/memcached
}

// memcslap prints "Time to get 100000 keys by 50 threads: 1.652 seconds."
var memcslapTime = regexp.MustCompile(`Time to (get|set|mget)\s+(\d+) keys by\s+\d+ threads:\s+([0-9.]+) seconds`)

const (
	crossConc = 50
	crossExec = 2000 // per thread
)

// crossCheck runs memcslap's get test (50 threads, each its own connection,
// no pipelining: the shape of the get-set-10-1 workload) alternately.
func crossCheck(o *options) (*CrossCheck, []string) {
	mc, pt, fails := startPair(o, o.memoryMB)
	cc := &CrossCheck{}
	var ratios []float64
	for round := range o.rounds {
		var got [2]float64
		for i, s := range []*server{mc, pt} {
			if s == nil {
				continue
			}
			args := []string{"-s", s.addr, "-c", strconv.Itoa(crossConc), "-e", strconv.Itoa(crossExec), "-t", "get", "-N"}
			cc.Command = o.memcslap + " -s ADDR -c 50 -e 2000 -t get -N"
			out, err := exec.Command(o.memcslap, args...).CombinedOutput()
			if err != nil {
				fails = append(fails, fmt.Sprintf("memcslap on %s: %v\n%s", s.name, err, out))
				continue
			}
			m := memcslapTime.FindAllSubmatch(out, -1)
			// The last match is the measured phase; the first is the load.
			if len(m) == 0 {
				fails = append(fails, fmt.Sprintf("memcslap on %s: no timing in %q", s.name, out))
				continue
			}
			last := m[len(m)-1]
			n, _ := strconv.ParseFloat(string(last[2]), 64)
			secs, _ := strconv.ParseFloat(string(last[3]), 64)
			if secs > 0 {
				got[i] = n / secs
			}
			logf("memcslap round %d on %s: %.0f gets/s", round+1, s.name, got[i])
		}
		cc.Memcached = append(cc.Memcached, got[0])
		cc.Petrel = append(cc.Petrel, got[1])
		if got[0] > 0 && got[1] > 0 {
			ratios = append(ratios, got[1]/got[0])
		}
	}
	for _, s := range []*server{mc, pt} {
		if s != nil {
			s.stop()
		}
	}
	cc.Ratio = median(ratios, func(x float64) float64 { return x })
	return cc, fails
}
