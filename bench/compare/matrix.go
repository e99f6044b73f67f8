package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"petrel/internal/bench"
)

// Run is one client run against one server.
type Run struct {
	Workload  string        `json:"workload"`
	Server    string        `json:"server"`
	Round     int           `json:"round"`
	Command   string        `json:"command"`
	ServerCmd string        `json:"server_command"`
	RSSKB     int64         `json:"rss_kb"`   // after the run
	LoadAvg   string        `json:"load_avg"` // /proc/loadavg before the run: the machine is shared
	Result    *bench.Result `json:"result"`
}

// Side is one server's medians over the rounds of a workload.
type Side struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P99us     float64 `json:"p99_us"`
	RSSKB     float64 `json:"rss_kb"`
	HitRatio  float64 `json:"hit_ratio"`
	Errors    int64   `json:"errors"`
}

// Row is one workload's comparison. Ratios are Petrel/memcached, medians of
// the per-round ratios; 0 means not measured.
type Row struct {
	Workload   string  `json:"workload"`
	Memcached  Side    `json:"memcached"`
	Petrel     Side    `json:"petrel"`
	Throughput float64 `json:"throughput_ratio"`
	P99        float64 `json:"p99_ratio"`
	RSS        float64 `json:"rss_ratio"`
	// The per-round ratios behind the medians, to show the spread.
	ThroughputRounds []float64 `json:"throughput_ratio_rounds"`
	P99Rounds        []float64 `json:"p99_ratio_rounds"`
}

func (r Row) line() string {
	return fmt.Sprintf("%-14s throughput %s (%.0f vs %.0f ops/s)  p99 %s (%.0f vs %.0f µs)  rss %s",
		r.Workload, ratioText(r.Throughput), r.Petrel.OpsPerSec, r.Memcached.OpsPerSec,
		ratioText(r.P99), r.Petrel.P99us, r.Memcached.P99us, ratioText(r.RSS))
}

func ratioText(x float64) string {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", x)
}

func memcachedArgs(o *options, port, mb int) []string {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0",
		"-t", strconv.Itoa(o.threads), "-m", strconv.Itoa(mb), "-c", "4096"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // memcached refuses to run as root
	}
	return args
}

func petrelArgs(o *options, port, mb int, extra string) []string {
	// The admin listener is off: its default port would collide between runs.
	args := []string{"serve", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0",
		"-t", strconv.Itoa(o.threads), "-m", strconv.Itoa(mb), "-c", "4096", "--admin="}
	return append(args, strings.Fields(extra)...)
}

// startPair starts memcached and Petrel with the same limits; either may be
// nil when it failed to start, and the failure is returned as text.
func startPair(o *options, mb int) (mc, pt *server, fails []string) {
	var err error
	if mc, err = start("memcached", o.memcached, func(p int) []string { return memcachedArgs(o, p, mb) }); err != nil {
		fails = append(fails, err.Error())
	}
	if pt, err = start("petrel", o.petrel, func(p int) []string { return petrelArgs(o, p, mb, o.petrelArgs) }); err != nil {
		fails = append(fails, err.Error())
	}
	return mc, pt, fails
}

// client runs `petrel bench` against s and reads its JSON result.
func client(o *options, s *server, name string, round int, args ...string) (Run, error) {
	out := filepath.Join(o.out, "runs", fmt.Sprintf("%s-%s-%d.json", name, s.name, round))
	full := append([]string{"bench", "-server", s.addr, "-threads", strconv.Itoa(o.clientThreads),
		"-seed", strconv.Itoa(round + 1), "-quiet", "-json", out}, args...)
	r := Run{Workload: name, Server: s.name, Round: round, ServerCmd: s.command(),
		Command: o.petrel + " " + strings.Join(full, " ")}
	r.LoadAvg = loadAvg()
	cmd := exec.Command(o.petrel, full...)
	text, err := cmd.CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("%s: %w\n%s", r.Command, err, text)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return r, fmt.Errorf("%s: %w", r.Command, err)
	}
	r.Result = &bench.Result{}
	if err := json.Unmarshal(b, r.Result); err != nil {
		return r, fmt.Errorf("%s: result: %w", out, err)
	}
	r.RSSKB = s.rssKB()
	return r, nil
}

// matrixWorkload runs one workload file alternately on both servers.
func matrixWorkload(o *options, file, name string) (Row, []Run, []string) {
	row := Row{Workload: name}
	mc, pt, fails := startPair(o, o.memoryMB)
	servers := []*server{mc, pt}
	var runs []Run
	per := map[string][]Run{}
	for round := range o.rounds {
		for _, s := range servers {
			if s == nil {
				continue
			}
			logf("%s round %d on %s", name, round+1, s.name)
			r, err := client(o, s, name, round, "-config", file, "-duration", o.duration.String())
			if err != nil {
				fails = append(fails, err.Error())
				logf("  failed: %v", err)
				continue
			}
			runs = append(runs, r)
			per[s.name] = append(per[s.name], r)
		}
	}
	for _, s := range servers {
		if s != nil {
			s.stop()
		}
	}
	row.Memcached, row.Petrel = side(per["memcached"]), side(per["petrel"])
	row.Throughput, row.ThroughputRounds = medianRatio(per, func(r Run) float64 { return r.Result.OpsPerSec })
	row.P99, row.P99Rounds = medianRatio(per, func(r Run) float64 { return r.Result.Latency.P99 })
	row.RSS, _ = medianRatio(per, func(r Run) float64 { return float64(r.RSSKB) })
	return row, runs, fails
}

func side(runs []Run) Side {
	var s Side
	if len(runs) == 0 {
		return s
	}
	s.OpsPerSec = median(runs, func(r Run) float64 { return r.Result.OpsPerSec })
	s.P99us = median(runs, func(r Run) float64 { return r.Result.Latency.P99 })
	s.RSSKB = median(runs, func(r Run) float64 { return float64(r.RSSKB) })
	s.HitRatio = median(runs, func(r Run) float64 { return r.Result.HitRatio })
	for _, r := range runs {
		s.Errors += r.Result.ErrorCount
	}
	return s
}

func median[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medianRatio pairs the rounds (round i of Petrel with round i of
// memcached) and takes the median of their ratios, which it also returns.
func medianRatio(per map[string][]Run, f func(Run) float64) (float64, []float64) {
	byRound := map[int]Run{}
	for _, r := range per["memcached"] {
		byRound[r.Round] = r
	}
	var ratios []float64
	for _, p := range per["petrel"] {
		if m, ok := byRound[p.Round]; ok && f(m) > 0 {
			ratios = append(ratios, f(p)/f(m))
		}
	}
	return median(ratios, func(x float64) float64 { return x }), ratios
}
