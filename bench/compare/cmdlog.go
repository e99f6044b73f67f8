package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The command logger's overhead (issue #6): Petrel with the logger off,
// sampling 1 request in 100, and logging every request, driven at the
// highest rate this machine sustains (pipelined gets), in alternating
// rounds so the drifts of a shared machine hit every mode alike. Beside
// throughput it records the server's CPU time per request from /proc:
// when the load generator shares the cores, ops/s moves with whatever else
// runs, CPU per request much less, and on a CPU-bound server the CPU ratio
// bounds the throughput ratio.

// CmdlogBench is the whole measurement.
type CmdlogBench struct {
	Modes   []CmdlogMode `json:"modes"`
	Runs    []CmdlogRun  `json:"runs"`
	Command string       `json:"bench_command"` // one mode's client command
}

// CmdlogMode is one logger setting's medians over the rounds.
type CmdlogMode struct {
	Mode          string  `json:"mode"` // off, sample100, sample1
	ServerArgs    string  `json:"server_args"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	Ratio         float64 `json:"ratio_to_off"` // median of per-round ratios
	CPUusPerReq   float64 `json:"cpu_us_per_request"`
	CPURatio      float64 `json:"cpu_ratio_to_off"`
	LinesPerSec   float64 `json:"logged_lines_per_sec"`
	DropsTotal    int64   `json:"drops"`
	LostTotal     int64   `json:"lost"`
	RequestsTotal int64   `json:"requests"`
}

// CmdlogRun is one run of one mode.
type CmdlogRun struct {
	Mode        string  `json:"mode"`
	Round       int     `json:"round"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	Requests    int64   `json:"requests"` // preload and measured
	CPUusPerReq float64 `json:"cpu_us_per_request"`
	Lines       int64   `json:"lines"`
	Seconds     float64 `json:"seconds"` // the client's wall time, preload included
	Drops       int64   `json:"drops"`
	Lost        int64   `json:"lost"`
	LoadAvg     string  `json:"load_avg"`
}

var cmdlogModes = []struct{ name, args string }{
	{"off", ""},
	{"sample100", "--cmdlog {log} --cmdlog-sample 100"},
	{"sample1", "--cmdlog {log} --cmdlog-sample 1"},
}

// cmdlogBench runs -rounds rounds of every mode, each on a fresh server.
func cmdlogBench(o *options) (*CmdlogBench, []string) {
	cb := &CmdlogBench{}
	var fails []string
	dir, err := os.MkdirTemp(o.scratch, "petrel-cmdlog-")
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer os.RemoveAll(dir)
	args := []string{"-conns", "50", "-depth", "8", "-keys", "100000", "-ratio", "1:0", "-value", "fixed:100",
		"-key-size", "fixed:16", "-preload", "-duration", o.duration.String()}
	for round := range o.rounds {
		// Each round starts with the next mode, so none always runs first.
		for k := range cmdlogModes {
			m := cmdlogModes[(round+k)%len(cmdlogModes)]
			logf("cmdlog %s round %d", m.name, round+1)
			log := fmt.Sprintf("%s/cmd-%s-%d.log", dir, m.name, round)
			extra := strings.ReplaceAll(m.args, "{log}", log)
			s, err := start("petrel-cmdlog-"+m.name, o.petrel, func(p int) []string { return petrelArgs(o, p, 256, extra) })
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			before, _ := statCmd(s.addr, "cmdlog")
			c0 := cpuTicks(s)
			t := time.Now()
			r, err := client(o, s, "cmdlog-"+m.name, round, args...)
			secs := time.Since(t).Seconds()
			time.Sleep(100 * time.Millisecond) // the drainer writes every 20 ms
			c1 := cpuTicks(s)
			after, _ := statCmd(s.addr, "cmdlog")
			s.stop()
			os.Remove(log)
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			if cb.Command == "" {
				cb.Command = r.Command
			}
			reqs := r.Result.Ops
			if p := r.Result.Preload; p != nil {
				reqs += p.Requests
			}
			run := CmdlogRun{Mode: m.name, Round: round, OpsPerSec: r.Result.OpsPerSec, Requests: reqs, Seconds: secs,
				Lines: int64(statDelta(before, after, "cmdlog_lines")), Drops: int64(statDelta(before, after, "cmdlog_drops")),
				Lost: int64(statDelta(before, after, "cmdlog_lost")), LoadAvg: r.LoadAvg}
			if reqs > 0 {
				run.CPUusPerReq = float64(c1-c0) / clockTicks * 1e6 / float64(reqs)
			}
			cb.Runs = append(cb.Runs, run)
			logf("  %s: %.0f ops/s, %.2f cpu-µs/req, %d lines, %d drops", m.name, run.OpsPerSec, run.CPUusPerReq, run.Lines, run.Drops)
		}
	}
	id := func(x float64) float64 { return x }
	for _, m := range cmdlogModes {
		cm := CmdlogMode{Mode: m.name, ServerArgs: m.args}
		var ratios, cpuRatios, ops, cpu, lps []float64
		for _, r := range cb.Runs {
			if r.Mode != m.name {
				continue
			}
			ops, cpu = append(ops, r.OpsPerSec), append(cpu, r.CPUusPerReq)
			lps = append(lps, float64(r.Lines)/r.Seconds)
			cm.DropsTotal += r.Drops
			cm.LostTotal += r.Lost
			cm.RequestsTotal += r.Requests
			for _, off := range cb.Runs {
				if off.Mode == "off" && off.Round == r.Round && off.OpsPerSec > 0 && off.CPUusPerReq > 0 {
					ratios = append(ratios, r.OpsPerSec/off.OpsPerSec)
					cpuRatios = append(cpuRatios, r.CPUusPerReq/off.CPUusPerReq)
				}
			}
		}
		if len(ops) == 0 {
			continue
		}
		cm.OpsPerSec, cm.CPUusPerReq, cm.LinesPerSec = median(ops, id), median(cpu, id), median(lps, id)
		cm.Ratio, cm.CPURatio = median(ratios, id), median(cpuRatios, id)
		cb.Modes = append(cb.Modes, cm)
	}
	return cb, fails
}

// statCmd sends a command that answers STAT lines and END (`stats`,
// `cmdlog`) and returns the fields.
func statCmd(addr, cmd string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "END":
			return out, nil
		case len(f) == 3 && f[0] == "STAT":
			out[f[1]] = f[2]
		case len(f) > 0 && strings.Contains(f[0], "ERROR"):
			return out, fmt.Errorf("%s: %s", cmd, sc.Text())
		}
	}
	return out, fmt.Errorf("%s: no END (%v)", cmd, sc.Err())
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks is the server's user+system time so far, in clock ticks.
func cpuTicks(s *server) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14 of the whole line
	k, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return u + k
}

func cmdlogMarkdown(s *Summary) string {
	cb := s.Cmdlog
	if cb == nil || len(cb.Modes) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| command logger | ops/s (median) | ratio to off | server CPU µs/request | CPU ratio to off | logged lines/s | drops | lost | requests |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	by := map[string]CmdlogMode{}
	for _, m := range cb.Modes {
		by[m.Mode] = m
		fmt.Fprintf(&b, "| %s | %.0f | %.3f | %.2f | %.3f | %.0f | %d | %d | %d |\n", m.Mode, m.OpsPerSec, m.Ratio, m.CPUusPerReq, m.CPURatio,
			m.LinesPerSec, m.DropsTotal, m.LostTotal, m.RequestsTotal)
	}
	fmt.Fprintf(&b, "\nClient: `%s` (the mode's server adds the --cmdlog flags).\n\n", cb.Command)
	if m, ok := by["sample100"]; ok {
		fmt.Fprintf(&b, "- Target: 1 in 100 ≥ 0.95× off: %s by throughput (%.3f×); by CPU per request %.3f× off (≤ 1/0.95 = 1.053: %s).\n",
			metText(m.Ratio >= 0.95), m.Ratio, m.CPURatio, metText(m.CPURatio <= 1/0.95))
	}
	if m, ok := by["sample1"]; ok {
		fmt.Fprintf(&b, "- Target: every request ≥ 0.8× off: %s by throughput (%.3f×); by CPU per request %.3f× off (≤ 1/0.8 = 1.25: %s).\n",
			metText(m.Ratio >= 0.8), m.Ratio, m.CPURatio, metText(m.CPURatio <= 1/0.8))
		fmt.Fprintf(&b, "- Target: ≥ 100k logged requests/s: %s, %.0f/s; %d dropped of %d requests.\n",
			metText(m.LinesPerSec >= 100e3), m.LinesPerSec, m.DropsTotal, m.RequestsTotal)
	}
	b.WriteString("\n")
	return b.String()
}

func cmdlogSVG(s *Summary) []byte {
	var tp, cpu []bar
	var off CmdlogMode
	for _, m := range s.Cmdlog.Modes {
		if m.Mode == "off" {
			off = m
		}
	}
	for _, m := range s.Cmdlog.Modes {
		if m.Mode == "off" {
			continue
		}
		tp = append(tp, bar{label: m.Mode, ref: off.OpsPerSec, mine: m.OpsPerSec, note: fmt.Sprintf("%.2fx", m.Ratio)})
		cpu = append(cpu, bar{label: m.Mode, ref: off.CPUusPerReq, mine: m.CPUusPerReq, note: fmt.Sprintf("%.2fx", m.CPURatio)})
	}
	return barsSVG("Command logger overhead: pipelined gets", "logger off",
		[]string{"throughput, ops/s (higher is better)", "server CPU µs per request (lower is better)"}, [][]bar{tp, cpu})
}
