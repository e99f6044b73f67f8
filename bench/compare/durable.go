package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"petrel/internal/bench"
)

// The durable matrix of issue #4: Petrel's journal modes (sync: acknowledge
// after fdatasync; async: after the write) beside Redis's appendfsync
// always and everysec, the usual yardstick for a durable in-memory store.
// Every server gets a fresh data directory and runs at the same time as
// the others, idle while they are measured, so each workload alternates
// over the servers round by round and the drifts of a shared machine
// hit them alike. Redis without persistence and Petrel with durability
// off run too: they are the ceiling that the machine and the client set.

// DurableRow is one durable server mode on one workload.
type DurableRow struct {
	Server    string  `json:"server"` // "redis" or "petrel"
	Mode      string  `json:"mode"`   // appendfsync always/everysec, or Petrel's mode name
	Workload  string  `json:"workload"`
	Conns     int     `json:"conns"`
	Command   string  `json:"command"`
	ServerCmd string  `json:"server_command"`
	OpsPerSec float64 `json:"ops_per_sec"` // median over rounds
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	Errors    int64   `json:"errors"`
	// RecordsPerGroup is Petrel's journal records per group commit (one
	// write and, in sync mode, one fdatasync) over the measured runs, from
	// the journal_records and journal_groups deltas of `stats`.
	RecordsPerGroup float64 `json:"records_per_group,omitempty"`
	// SyncAvgUs is Petrel's mean fdatasync time since the server started
	// (journal_sync_avg_us after the last round).
	SyncAvgUs float64 `json:"sync_avg_us,omitempty"`
	Rounds    int     `json:"rounds"`
}

// durableWorkload is one column of the matrix: set-only.toml with the
// connections overridden, or the 10:1 mix.
type durableWorkload struct {
	name  string
	conns int
	args  []string
}

func durableWorkloads(o *options) []durableWorkload {
	set := filepath.Join(filepath.Dir(o.workloads), "set-only.toml")
	var ws []durableWorkload
	for _, c := range []int{1, 50, 200} {
		ws = append(ws, durableWorkload{fmt.Sprintf("set c%d", c), c, []string{"-config", set, "-conns", strconv.Itoa(c)}})
	}
	ws = append(ws, durableWorkload{"get:set 10:1 c50", 50, []string{"-config", set, "-conns", "50", "-ratio", "10:1", "-preload"}})
	return ws
}

// redisNoPersistence names Redis without AOF or snapshots: beside Petrel
// with durability off, the ceiling this machine and client put on any mode.
const redisNoPersistence = "no persistence"

type durableMode struct {
	server, name, bin, proto string
	args                     func(port int, dir string) []string
}

func durableModes(o *options) ([]durableMode, []string) {
	var modes []durableMode
	var notes []string
	for _, fsync := range []string{"always", "everysec", ""} {
		name, aof := "appendfsync "+fsync, []string{"--appendonly", "yes", "--appendfsync", fsync}
		if fsync == "" {
			// The ceiling: what the same client reaches with nothing kept.
			name, aof = redisNoPersistence, []string{"--appendonly", "no"}
		}
		modes = append(modes, durableMode{"redis", name, o.redis, "resp", func(port int, dir string) []string {
			return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir}, aof...)
		}})
	}
	if o.petrelDurable == "" {
		notes = append(notes, "durable matrix: -petrel-durable is empty; Redis only")
	}
	for _, spec := range strings.Split(o.petrelDurable, ";") {
		name, args, ok := strings.Cut(strings.TrimSpace(spec), "=")
		if !ok {
			continue
		}
		modes = append(modes, durableMode{"petrel", name, o.petrel, "text", func(port int, dir string) []string {
			return petrelArgs(o, port, o.memoryMB, strings.ReplaceAll(args, "{dir}", dir))
		}})
	}
	return modes, notes
}

// durableMatrix runs every workload on every durable mode.
func durableMatrix(o *options) ([]DurableRow, []string, []string) {
	modes, notes, fails := durableModesStarted(o)
	defer func() {
		for _, m := range modes {
			m.s.stop()
			os.RemoveAll(m.dir)
		}
	}()
	var rows []DurableRow
	for _, w := range durableWorkloads(o) {
		per := make([][]Run, len(modes))
		recs, groups, syncUs := make([]float64, len(modes)), make([]float64, len(modes)), make([]float64, len(modes))
		for round := range o.rounds {
			for i, m := range modes {
				logf("durable %s: %s %s round %d", w.name, m.server, m.name, round+1)
				var before map[string]string
				if m.server == "petrel" { // Redis has no `stats`: it would wait for END
					before, _ = m.s.stats()
				}
				args := append([]string{"-protocol", m.proto, "-duration", o.duration.String()}, w.args...)
				r, err := client(o, m.s, "durable-"+slug(w.name)+"-"+slug(m.name), round, args...)
				if err != nil {
					fails = append(fails, err.Error())
					continue
				}
				if m.server == "petrel" {
					after, _ := m.s.stats()
					recs[i] += statDelta(before, after, "journal_records")
					groups[i] += statDelta(before, after, "journal_groups")
					syncUs[i], _ = strconv.ParseFloat(after["journal_sync_avg_us"], 64)
				}
				per[i] = append(per[i], r)
			}
		}
		for i, m := range modes {
			if len(per[i]) == 0 {
				continue
			}
			sd := side(per[i])
			row := DurableRow{Server: m.server, Mode: m.name, Workload: w.name, Conns: w.conns,
				Command: per[i][0].Command, ServerCmd: m.s.command(), OpsPerSec: sd.OpsPerSec, P99us: sd.P99us,
				P50us: median(per[i], func(r Run) float64 { return r.Result.Latency.P50 }), Errors: sd.Errors, Rounds: len(per[i])}
			if groups[i] > 0 {
				row.RecordsPerGroup = recs[i] / groups[i]
			}
			row.SyncAvgUs = syncUs[i]
			rows = append(rows, row)
			logf("  %s %s: %.0f ops/s p50 %.0f µs p99 %.0f µs records/group %.1f", m.server, m.name, row.OpsPerSec, row.P50us, row.P99us, row.RecordsPerGroup)
		}
	}
	return rows, notes, fails
}

type startedMode struct {
	durableMode
	s   *server
	dir string
}

// durableModesStarted starts every durable mode with a fresh data directory.
func durableModesStarted(o *options) ([]startedMode, []string, []string) {
	modes, notes := durableModes(o)
	var out []startedMode
	var fails []string
	for _, m := range modes {
		dir, err := os.MkdirTemp(o.scratch, "petrel-durable-")
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		s, err := start(m.server+" "+m.name, m.bin, func(p int) []string { return m.args(p, dir) })
		if err != nil {
			fails = append(fails, err.Error())
			os.RemoveAll(dir)
			continue
		}
		s.name = slug(m.server + "-" + m.name)
		out = append(out, startedMode{m, s, dir})
	}
	return out, notes, fails
}

func slug(s string) string {
	return strings.NewReplacer(" ", "-", ":", "-", "/", "-").Replace(s)
}

// statDelta is after[name] - before[name], 0 when either is missing.
func statDelta(before, after map[string]string, name string) float64 {
	a, err1 := strconv.ParseFloat(after[name], 64)
	b, err2 := strconv.ParseFloat(before[name], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return a - b
}

// StorerBusy compares read-only gets on a durable Petrel with its storer
// idle and with it busy applying a concurrent set load on other keys, and
// the same on a Petrel without durability as the control: on a machine
// whose client and server share the cores, the set load alone slows the
// gets, storer or not.
type StorerBusy struct {
	Method string           `json:"method"`
	Sides  []StorerBusySide `json:"sides"`
}

// StorerBusySide is one server's idle and busy gets.
type StorerBusySide struct {
	Server      string  `json:"server"` // "petrel sync" or "petrel off"
	ServerCmd   string  `json:"server_command"`
	IdleOps     float64 `json:"idle_gets_per_sec"`
	BusyOps     float64 `json:"busy_gets_per_sec"`
	Ratio       float64 `json:"ratio"` // median over rounds of busy/idle
	IdleP99us   float64 `json:"idle_p99_us"`
	BusyP99us   float64 `json:"busy_p99_us"`
	SetsPerSec  float64 `json:"concurrent_sets_per_sec"`
	StorerRecs  float64 `json:"storer_records_applied_during_busy"` // per busy run, median
	StorerBatch float64 `json:"storer_batches_during_busy"`
	Backlog     float64 `json:"storer_backlog_records_max"`
}

// storerBusy measures gets while the storer applies writes. Method: three
// servers (durability sync, async and off), each preloaded with the get
// keys; per round, 50 connections of gets alone ("idle": the durable
// server's storer has applied everything, its backlog is 0), then the same
// gets while 8 more connections set other keys for the whole run ("busy":
// the durable server's storer applies those sets to Pebble as the gets
// run). The durable busy/idle ratios are the target; in async mode the set
// load runs as fast as on the control, in sync mode it waits for
// fdatasync. The durability-off ratio shows how much of the drop is the set load's CPU, not the storer.
func storerBusy(o *options) (*StorerBusy, []string) {
	var fails []string
	sb := &StorerBusy{Method: "read-only gets (50 conns, 100k preloaded keys, prefix g:) alone, then while 8 connections set 100 B values to other keys (prefix s:) for the whole run; durable Petrel (sync, then async: a set load as fast as the control's) beside Petrel with durability off as the control for the CPU the set load takes on a shared 2-core machine"}
	type srv struct {
		name string
		s    *server
		dir  string
	}
	var servers []srv
	var held []*os.File
	for _, mode := range []string{"sync", "async", "off", "sync" + heldOff, "async" + heldOff} {
		dir, err := os.MkdirTemp(o.scratch, "petrel-busy-")
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		extra := "--durability off"
		if mode != "off" {
			extra = "--data-dir " + dir + " --durability " + strings.TrimSuffix(mode, heldOff)
		}
		if strings.HasSuffix(mode, heldOff) {
			// Hold the storer lock, as a `petrel storer` beside the
			// server would: the server then runs no storer at all.
			f, err := holdStorerLock(dir)
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			held = append(held, f)
		}
		s, err := start("petrel-"+strings.ReplaceAll(mode, " ", "-"), o.petrel, func(p int) []string { return petrelArgs(o, p, o.memoryMB, extra) })
		if err != nil {
			fails = append(fails, err.Error())
			os.RemoveAll(dir)
			continue
		}
		servers = append(servers, srv{"petrel " + mode, s, dir})
	}
	defer func() {
		for _, v := range servers {
			v.s.stop()
			os.RemoveAll(v.dir)
		}
		for _, f := range held {
			f.Close()
		}
	}()
	gets := []string{"-conns", "50", "-keys", "100000", "-prefix", "g:", "-ratio", "1:0", "-value", "fixed:100", "-duration", o.duration.String()}
	for _, v := range servers {
		if _, err := client(o, v.s, "busy-preload", 0, "-conns", "50", "-keys", "100000", "-prefix", "g:", "-preload", "-duration", "0"); err != nil {
			fails = append(fails, err.Error())
		}
	}
	type acc struct {
		idle, busy                []Run
		sets, recs, batches, back []float64
	}
	accs := make([]acc, len(servers))
	for round := range o.rounds {
		for i, v := range servers {
			waitStorerIdle(v.s)
			logf("storer-busy %s idle round %d", v.name, round+1)
			r, err := client(o, v.s, "busy-idle-gets", round, gets...)
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			accs[i].idle = append(accs[i].idle, r)
			logf("storer-busy %s busy round %d", v.name, round+1)
			setOut := filepath.Join(o.out, "runs", fmt.Sprintf("busy-sets-%s-%d.json", v.s.name, round))
			setDur := o.duration + 3*time.Second
			sets := exec.Command(o.petrel, "bench", "-server", v.s.addr, "-threads", "1", "-quiet", "-json", setOut,
				"-conns", "8", "-keys", "1000000", "-prefix", "s:", "-ratio", "0:1", "-value", "fixed:100",
				"-seed", strconv.Itoa(round+1), "-duration", setDur.String())
			if err := sets.Start(); err != nil {
				fails = append(fails, fmt.Sprintf("set load: %v", err))
				continue
			}
			time.Sleep(1500 * time.Millisecond) // let the storer get going
			before, _ := v.s.stats()
			stop := make(chan struct{})
			backlog := make(chan float64, 1)
			go func() { backlog <- maxBacklog(v.s, stop) }()
			r, err = client(o, v.s, "busy-busy-gets", round, gets...)
			close(stop)
			after, _ := v.s.stats()
			sets.Wait()
			if err != nil {
				fails = append(fails, err.Error())
				continue
			}
			accs[i].busy = append(accs[i].busy, r)
			accs[i].recs = append(accs[i].recs, statDelta(before, after, "storer_records"))
			accs[i].batches = append(accs[i].batches, statDelta(before, after, "storer_batches"))
			accs[i].back = append(accs[i].back, <-backlog)
			if res, err := readResult(setOut); err == nil {
				accs[i].sets = append(accs[i].sets, res.OpsPerSec)
			}
		}
	}
	id := func(x float64) float64 { return x }
	for i, v := range servers {
		a := accs[i]
		var ratios []float64
		for j := range min(len(a.idle), len(a.busy)) {
			if a.idle[j].Result.OpsPerSec > 0 {
				ratios = append(ratios, a.busy[j].Result.OpsPerSec/a.idle[j].Result.OpsPerSec)
			}
		}
		is, bs := side(a.idle), side(a.busy)
		var back float64
		for _, b := range a.back {
			back = max(back, b)
		}
		sb.Sides = append(sb.Sides, StorerBusySide{Server: v.name, ServerCmd: v.s.command(), IdleOps: is.OpsPerSec, BusyOps: bs.OpsPerSec,
			Ratio: median(ratios, id), IdleP99us: is.P99us, BusyP99us: bs.P99us, SetsPerSec: median(a.sets, id),
			StorerRecs: median(a.recs, id), StorerBatch: median(a.batches, id), Backlog: back})
		logf("  %s: idle %.0f busy %.0f gets/s, ratio %.2f, sets %.0f/s, storer applied %.0f records in %.0f batches",
			v.name, is.OpsPerSec, bs.OpsPerSec, median(ratios, id), median(a.sets, id), median(a.recs, id), median(a.batches, id))
	}
	return sb, fails
}

// heldOff marks a storer-busy server whose storer never runs: the control
// that isolates what the storer itself costs the gets.
const heldOff = ", no storer"

// holdStorerLock takes dir's storer lock (internal/storage's flock on
// storer.lock) for as long as the returned file is open.
func holdStorerLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "storer.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storer lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("storer lock %s: %w", dir, err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// readResult reads one `petrel bench -json` file.
func readResult(path string) (*bench.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench result: %w", err)
	}
	r := &bench.Result{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("bench result %s: %w", path, err)
	}
	return r, nil
}

// waitStorerIdle waits (up to 30 s) until the storer has applied the
// journal: its backlog is empty.
func waitStorerIdle(s *server) {
	for range 300 {
		st, err := s.stats()
		if err != nil || st["storer_backlog_records"] == "" || st["storer_backlog_records"] == "0" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maxBacklog samples storer_backlog_records every 200 ms until stop.
func maxBacklog(s *server, stop chan struct{}) float64 {
	var hi float64
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return hi
		case <-t.C:
			if st, err := s.stats(); err == nil {
				if n, err := strconv.ParseFloat(st["storer_backlog_records"], 64); err == nil {
					hi = max(hi, n)
				}
			}
		}
	}
}

// durableMarkdown is the durable matrix as a table, then the targets of
// issue #4 stated as met or missed with the measured numbers.
func durableMarkdown(s *Summary) string {
	var b strings.Builder
	if len(s.Durable) > 0 {
		b.WriteString("| durable workload | server | mode | ops/s | p50 µs | p99 µs | records per fsync group | mean fdatasync µs | errors |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range s.Durable {
			rpg, sync := "–", "–"
			if r.RecordsPerGroup > 0 {
				rpg = fmt.Sprintf("%.1f", r.RecordsPerGroup)
			}
			if r.SyncAvgUs > 0 {
				sync = fmt.Sprintf("%.0f", r.SyncAvgUs)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %d |\n", r.Workload, r.Server, r.Mode, r.OpsPerSec, r.P50us, r.P99us, rpg, sync, r.Errors)
		}
		b.WriteString("\n")
		find := func(server, mode, workload string) *DurableRow {
			for i, r := range s.Durable {
				if r.Server == server && r.Mode == mode && r.Workload == workload {
					return &s.Durable[i]
				}
			}
			return nil
		}
		if p, r := find("petrel", "sync", "set c50"), find("redis", "appendfsync always", "set c50"); p != nil && r != nil && r.OpsPerSec > 0 && r.P99us > 0 {
			fmt.Fprintf(&b, "- Target: Petrel sync throughput at 50 connections ≥ 2× Redis always: %s, %.2f× (%.0f vs %.0f sets/s).\n",
				metText(p.OpsPerSec/r.OpsPerSec >= 2), p.OpsPerSec/r.OpsPerSec, p.OpsPerSec, r.OpsPerSec)
			fmt.Fprintf(&b, "- Target: Petrel sync p99 ≤ Redis always p99 (50 connections): %s, %.0f vs %.0f µs (%.2f×).\n",
				metText(p.P99us <= r.P99us), p.P99us, r.P99us, p.P99us/r.P99us)
			if off, none := find("petrel", "off", "set c50"), find("redis", redisNoPersistence, "set c50"); off != nil && none != nil && off.OpsPerSec > 0 {
				fmt.Fprintf(&b, "- Ceiling at 50 connections, nothing kept: Petrel (durability off) %.0f and Redis (no persistence) %.0f sets/s. 2× Redis always is %.0f sets/s, %.2f× Petrel's rate without durability; Petrel sync reaches %.2f× of that rate.\n",
					off.OpsPerSec, none.OpsPerSec, 2*r.OpsPerSec, 2*r.OpsPerSec/off.OpsPerSec, p.OpsPerSec/off.OpsPerSec)
			}
		}
		b.WriteString("\n")
	}
	if sb := s.Busy; sb != nil && len(sb.Sides) > 0 {
		b.WriteString("| gets, storer idle vs busy | idle gets/s | busy gets/s | busy/idle | idle p99 µs | busy p99 µs | concurrent sets/s | storer records applied during busy run | storer batches | max storer backlog |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, v := range sb.Sides {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f× | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", v.Server, v.IdleOps, v.BusyOps, v.Ratio,
				v.IdleP99us, v.BusyP99us, v.SetsPerSec, v.StorerRecs, v.StorerBatch, v.Backlog)
		}
		fmt.Fprintf(&b, "\nMethod: %s.\n\n", sb.Method)
		var control float64
		bySide := map[string]StorerBusySide{}
		for _, d := range sb.Sides {
			bySide[d.Server] = d
			if d.Server == "petrel off" {
				control = d.Ratio
			}
		}
		for _, d := range sb.Sides {
			if d.Server == "petrel off" || strings.HasSuffix(d.Server, heldOff) {
				continue
			}
			if h, ok := bySide[d.Server+heldOff]; ok && h.BusyOps > 0 {
				// The target as stated: the same gets under the same set
				// load, with the storer applying it against never running.
				r := d.BusyOps / h.BusyOps
				fmt.Fprintf(&b, "- Target: gets while the storer is busy ≥ 0.9× gets with it idle (the same set load, storer held off), %s: %s, %.2f× (%.0f vs %.0f gets/s).\n",
					d.Server, metText(r >= 0.9), r, d.BusyOps, h.BusyOps)
			}
			fmt.Fprintf(&b, "- Gets under the set load against gets with no load at all, %s: %.2f×", d.Server, d.Ratio)
			if control > 0 {
				fmt.Fprintf(&b, " (the control without durability under the same set load: %.2f×; durable/control %.2f×)", control, d.Ratio/control)
			}
			b.WriteString(".\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func metText(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func durableSVG(s *Summary) []byte {
	var panels []string
	var data [][]bar
	for _, metric := range []string{"throughput, ops/s", "p99 latency, µs"} {
		var bars []bar
		for _, w := range durableWorkloadNames(s) {
			for _, pair := range [][2]string{{"appendfsync always", "sync"}, {"appendfsync everysec", "async"}, {redisNoPersistence, "off"}} {
				b := bar{label: w + ": " + pair[1] + " / " + strings.TrimPrefix(pair[0], "appendfsync ")}
				for _, r := range s.Durable {
					if r.Workload != w {
						continue
					}
					v := r.OpsPerSec
					if metric != "throughput, ops/s" {
						v = r.P99us
					}
					switch {
					case r.Server == "redis" && r.Mode == pair[0]:
						b.ref = v
					case r.Server == "petrel" && r.Mode == pair[1]:
						b.mine = v
					}
				}
				if b.ref > 0 && b.mine > 0 {
					b.note = ratioText(b.mine / b.ref)
				}
				bars = append(bars, b)
			}
		}
		panels, data = append(panels, metric), append(data, bars)
	}
	return barsSVG("Durable: Petrel sync/async vs Redis appendfsync always/everysec", "Redis 7", panels, data)
}

func durableWorkloadNames(s *Summary) []string {
	var names []string
	for _, r := range s.Durable {
		if !slices.Contains(names, r.Workload) {
			names = append(names, r.Workload)
		}
	}
	return names
}
