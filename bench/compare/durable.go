package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DurableRow is one durable server mode on the set-only workload.
type DurableRow struct {
	Server    string  `json:"server"` // "redis" or "petrel"
	Mode      string  `json:"mode"`   // appendfsync always/everysec, or Petrel's mode name
	Command   string  `json:"command"`
	ServerCmd string  `json:"server_command"`
	OpsPerSec float64 `json:"ops_per_sec"` // median over rounds
	P99us     float64 `json:"p99_us"`
	Errors    int64   `json:"errors"`
}

// durableMatrix compares Redis's appendfsync modes with Petrel's durable
// modes on writes. Petrel's modes are given by -petrel-durable, since its
// journal lands separately; without them only Redis is measured.
func durableMatrix(o *options) ([]DurableRow, []string, []string) {
	var rows []DurableRow
	var notes, fails []string
	type mode struct {
		server, name, bin, proto string
		args                     func(port int, dir string) []string
	}
	var modes []mode
	for _, fsync := range []string{"always", "everysec"} {
		modes = append(modes, mode{"redis", "appendfsync " + fsync, o.redis, "resp", func(port int, dir string) []string {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
				"--appendonly", "yes", "--appendfsync", fsync, "--dir", dir}
		}})
	}
	if o.petrelDurable == "" {
		notes = append(notes, "durable matrix: Petrel's durable modes were not given (-petrel-durable); Redis only")
	}
	for _, spec := range strings.Split(o.petrelDurable, ";") {
		name, args, ok := strings.Cut(strings.TrimSpace(spec), "=")
		if !ok {
			continue
		}
		modes = append(modes, mode{"petrel", name, o.petrel, "text", func(port int, dir string) []string {
			return petrelArgs(o, port, o.memoryMB, strings.ReplaceAll(args, "{dir}", dir))
		}})
	}
	workload := filepath.Join(filepath.Dir(o.workloads), "set-only.toml")
	for _, m := range modes {
		dir, err := os.MkdirTemp("", "petrel-durable-")
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		s, err := start(m.server, m.bin, func(p int) []string { return m.args(p, dir) })
		if err != nil {
			fails = append(fails, err.Error())
			os.RemoveAll(dir)
			continue
		}
		var runs []Run
		for round := range o.rounds {
			logf("durable %s %s round %d", m.server, m.name, round+1)
			r, err := client(o, s, "durable-"+strings.ReplaceAll(m.name, " ", "-"), round,
				"-config", workload, "-protocol", m.proto, "-duration", o.duration.String())
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			runs = append(runs, r)
		}
		s.stop()
		os.RemoveAll(dir)
		if len(runs) == 0 {
			continue
		}
		sd := side(runs)
		rows = append(rows, DurableRow{Server: m.server, Mode: m.name, Command: runs[0].Command,
			ServerCmd: s.command(), OpsPerSec: sd.OpsPerSec, P99us: sd.P99us, Errors: sd.Errors})
	}
	return rows, notes, fails
}
