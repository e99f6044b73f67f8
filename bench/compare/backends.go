package main

// `go run ./bench/compare backends`: the 2013 memcached-on-DynamoDB table
// of issue #5, on this machine. Petrel without durability is the baseline;
// beside it, write-behind and write-through against PostgreSQL and against
// dynalite (a DynamoDB-compatible server), at get:set 9:1 and 1:1. Every
// cell gets a fresh Petrel, data directory and table, a preload, and a
// short measured run of `petrel bench`. For write-behind it also records
// the largest backlog seen and how long the storer took to drain it after
// the run: write-behind is only fast because the backend catches up later.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BackendCell is one measured cell of the table.
type BackendCell struct {
	Backend   string  `json:"backend"` // "none" for the baseline
	Mode      string  `json:"mode"`    // baseline, write-behind, write-through
	Ratio     string  `json:"ratio"`   // get:set
	OpsPerSec float64 `json:"ops_per_sec"`
	MeanUs    float64 `json:"mean_us"`
	P99us     float64 `json:"p99_us"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// Ratio to the baseline's throughput at the same get:set ratio.
	VsBaseline float64 `json:"vs_baseline"`
	MaxBacklog float64 `json:"max_backlog_records,omitempty"`
	// Per round, when there were several: throughput and ratio.
	RoundOps   []float64 `json:"round_ops_per_sec,omitempty"`
	RoundRatio []float64 `json:"round_vs_baseline,omitempty"`
	DrainSecs  float64   `json:"drain_seconds,omitempty"`
	Command    string    `json:"command"`
	ServerCmd  string    `json:"server_command"`
}

// BackendsSummary is summary.json of a backends run.
type BackendsSummary struct {
	Date     time.Time     `json:"date"`
	Command  string        `json:"command"`
	Nproc    int           `json:"nproc"`
	Machine  Machine       `json:"machine"`
	Cells    []BackendCell `json:"cells"`
	Notes    []string      `json:"notes,omitempty"`
	Failures []string      `json:"failures,omitempty"`
}

func backendsMain(args []string) error {
	fs := flag.NewFlagSet("backends", flag.ExitOnError)
	o := options{}
	out := fs.String("out", "", "results directory (default bench/results/<date>-backends)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measuring time per cell")
	fs.StringVar(&o.petrel, "petrel", "bin/petrel", "petrel binary (server and client)")
	fs.BoolVar(&o.build, "build", true, "build the petrel binary first")
	fs.IntVar(&o.clientThreads, "client-threads", 2, "petrel bench threads")
	conns := fs.Int("conns", 50, "client connections")
	keys := fs.Int("keys", 10000, "key space (preloaded)")
	rounds := fs.Int("rounds", 1, "rounds over all cells; the table shows medians")
	ratios := fs.String("ratios", "9:1,1:1", "get:set ratios")
	backends := fs.String("backends", "pebble,postgres,dynamodb", "backends to measure (pebble: the embedded store, for what the journal alone costs)")
	serveArgs := fs.String("serve-args", "-t 2 -m 1024", "petrel serve arguments of every cell")
	durArgs := fs.String("durable-args", "--durability=sync", "petrel serve arguments of the durable cells")
	fs.Parse(args)
	o.out = *out
	if o.out == "" {
		o.out = filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02")+"-backends")
	}
	if err := os.MkdirAll(filepath.Join(o.out, "runs"), 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	if o.build {
		cmd := exec.Command("go", "build", "-o", o.petrel, "./cmd/petrel")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build petrel: %w", err)
		}
	}
	sum := &BackendsSummary{Date: time.Now().UTC(), Command: commandLine(), Nproc: runtime.NumCPU(), Machine: machine(&o)}
	sum.Notes = append(sum.Notes, fmt.Sprintf("client, Petrel and the database share the machine's %d cores", runtime.NumCPU()),
		"workload: "+strconv.Itoa(*keys)+" keys of 16 B, 100 B values, "+strconv.Itoa(*conns)+" connections, depth 1, preloaded; "+o.duration.String()+" per cell")
	scratch, err := os.MkdirTemp("", "petrel-backends-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)

	type target struct {
		name string
		args func(table string) []string
	}
	var targets []target
	for _, b := range strings.Split(*backends, ",") {
		switch b {
		case "pebble": // the journal and the embedded store: what durability alone costs
			targets = append(targets, target{b, func(string) []string { return []string{"--backend=pebble"} }})
		case "postgres":
			pg, err := startPG(scratch)
			if err != nil {
				sum.Failures = append(sum.Failures, err.Error())
				continue
			}
			defer pg.stop()
			targets = append(targets, target{b, func(table string) []string {
				return []string{"--backend=postgres", "--postgres-dsn=" + pg.dsn, "--postgres-table=" + table}
			}})
		case "dynamodb":
			dl, err := startDynalite(scratch)
			if err != nil {
				sum.Failures = append(sum.Failures, err.Error())
				continue
			}
			defer dl.stop()
			os.Setenv("AWS_ACCESS_KEY_ID", "petrel")
			os.Setenv("AWS_SECRET_ACCESS_KEY", "petrel")
			os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			targets = append(targets, target{b, func(table string) []string {
				return []string{"--backend=dynamodb", "--dynamodb-endpoint=" + dl.endpoint, "--dynamodb-region=us-east-1", "--dynamodb-table=" + table}
			}})
		}
	}
	cell := 0
	type cellKey struct{ backend, mode, ratio string }
	var order []cellKey
	per := map[cellKey][]BackendCell{}
	measure := func(round int, backend, mode, ratio string, extra []string) {
		cell++
		dir := filepath.Join(scratch, fmt.Sprintf("cell%d", cell))
		args := append(strings.Fields(*serveArgs), "--admin=")
		if mode != "baseline" {
			args = append(append(append(args, "--data-dir", dir, "--backend-mode="+mode), strings.Fields(*durArgs)...), extra...)
		}
		s, err := start("petrel", o.petrel, func(p int) []string {
			return append([]string{"serve", "-l", "127.0.0.1", "-p", strconv.Itoa(p)}, args...)
		})
		if err != nil {
			sum.Failures = append(sum.Failures, err.Error())
			return
		}
		defer s.stop()
		s.name = slug(backend + "-" + mode)
		logf("backends: round %d: %s %s get:set %s", round+1, backend, mode, ratio)
		stop := make(chan struct{})
		hi := make(chan float64, 1)
		go func() { hi <- maxBacklog(s, stop) }()
		r, err := client(&o, s, "backends-"+slug(ratio), round, "-conns", strconv.Itoa(*conns), "-keys", strconv.Itoa(*keys),
			"-key-size", "fixed:16", "-value", "fixed:100", "-ratio", ratio, "-preload", "-duration", o.duration.String())
		close(stop)
		if err != nil {
			sum.Failures = append(sum.Failures, err.Error())
			return
		}
		c := BackendCell{Backend: backend, Mode: mode, Ratio: ratio, OpsPerSec: r.Result.OpsPerSec,
			MeanUs: r.Result.Latency.Mean, P99us: r.Result.Latency.P99, Ops: r.Result.Ops, Errors: r.Result.ErrorCount,
			Command: r.Command, ServerCmd: s.command(), MaxBacklog: <-hi}
		if c.Ops+c.Errors > 0 {
			c.ErrorRate = float64(c.Errors) / float64(c.Ops+c.Errors)
		}
		if mode == "write-behind" {
			t0 := time.Now()
			waitStorerIdle(s)
			c.DrainSecs = time.Since(t0).Seconds()
		}
		k := cellKey{backend, mode, ratio}
		if _, ok := per[k]; !ok {
			order = append(order, k)
		}
		per[k] = append(per[k], c)
		logf("  %.0f ops/s mean %.0f µs p99 %.0f µs errors %d", c.OpsPerSec, c.MeanUs, c.P99us, c.Errors)
	}
	// Rounds run every cell in turn, so a drift of the shared machine
	// hits every cell alike; each cell's ratio to the baseline is taken
	// within its round, and the table shows medians over rounds.
	for round := range *rounds {
		for _, ratio := range strings.Split(*ratios, ",") {
			measure(round, "none", "baseline", ratio, nil)
			for _, t := range targets {
				for _, mode := range []string{"write-behind", "write-through"} {
					measure(round, t.name, mode, ratio, t.args(fmt.Sprintf("bench_%d_%d", time.Now().Unix(), cell+1)))
				}
			}
		}
	}
	baseOf := func(ratio string, round int) float64 {
		if b := per[cellKey{"none", "baseline", ratio}]; round < len(b) {
			return b[round].OpsPerSec
		}
		return 0
	}
	for _, k := range order {
		sum.Cells = append(sum.Cells, aggregate(per[k], func(round int) float64 { return baseOf(k.ratio, round) }))
	}
	sum.Machine.LoadEnd = loadAvg()
	return writeBackends(o.out, sum)
}

func writeBackends(dir string, s *BackendsSummary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	md := backendsMarkdown(s)
	files := map[string][]byte{"summary.json": append(b, '\n'), "table.md": []byte(md), "backends.svg": backendsSVG(s),
		"command.txt": []byte(s.Command + "\nnproc " + strconv.Itoa(s.Nproc) + "\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	fmt.Print(md)
	return nil
}

// backendsMarkdown is the table in the 2013 shape, then the targets.
func backendsMarkdown(s *BackendsSummary) string {
	var b strings.Builder
	b.WriteString("| backend | mode | get:set | average latency | p99 | throughput | vs baseline | error rate | max backlog | drain |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range s.Cells {
		drain := ""
		if c.Mode == "write-behind" {
			drain = fmt.Sprintf("%.1f s", c.DrainSecs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f µs | %.0f µs | %.0f ops/s | %.2f× | %.2f%% | %.0f | %s |\n",
			c.Backend, c.Mode, c.Ratio, c.MeanUs, c.P99us, c.OpsPerSec, c.VsBaseline, 100*c.ErrorRate, c.MaxBacklog, drain)
	}
	b.WriteString("\nTargets (issue #5):\n\n")
	for _, c := range s.Cells {
		var want string
		var ok bool
		switch {
		case c.Mode == "write-behind":
			want, ok = "≥ 0.8× baseline, 0 errors", c.VsBaseline >= 0.8 && c.Errors == 0
		case c.Mode == "write-through" && c.Ratio == "1:1":
			want, ok = "≥ 0.3× baseline, 0 errors", c.VsBaseline >= 0.3 && c.Errors == 0
		default:
			want, ok = "0 errors", c.Errors == 0
		}
		fmt.Fprintf(&b, "- %s %s %s: %s — %.2f×, %d errors: %s\n", c.Backend, c.Mode, c.Ratio, want, c.VsBaseline, c.Errors, metText(ok))
	}
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "- failure: %s\n", f)
	}
	return b.String()
}

// backendsSVG: one panel per get:set ratio, each cell's throughput (blue)
// beside the baseline's (grey).
func backendsSVG(s *BackendsSummary) []byte {
	var panels []string
	idx := map[string]int{}
	for _, c := range s.Cells {
		if _, ok := idx[c.Ratio]; !ok {
			idx[c.Ratio] = len(panels)
			panels = append(panels, "ops/s, get:set "+c.Ratio)
		}
	}
	data := make([][]bar, len(panels))
	base := map[string]float64{}
	for _, c := range s.Cells {
		if c.Mode == "baseline" {
			base[c.Ratio] = c.OpsPerSec
		}
	}
	for _, c := range s.Cells {
		if c.Mode == "baseline" {
			continue
		}
		data[idx[c.Ratio]] = append(data[idx[c.Ratio]], bar{label: c.Backend + " " + c.Mode,
			note: fmt.Sprintf("%.2f×", c.VsBaseline), ref: base[c.Ratio], mine: c.OpsPerSec})
	}
	return barsSVG("Petrel with a database behind it (grey: durability off)", "baseline", panels, data)
}

// pgServer is a throwaway PostgreSQL cluster (as internal/storage/backendtest
// starts for the tests, which need a testing.TB).
type pgServer struct {
	bin, data, dir, dsn string
	as                  []string
}

func startPG(scratch string) (*pgServer, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return nil, errors.New("postgres: initdb not found under /usr/lib/postgresql/*/bin (scripts/install-deps.sh)")
	}
	sort.Strings(found)
	s := &pgServer{bin: filepath.Dir(found[len(found)-1]), dir: filepath.Join(scratch, "pg")}
	s.data = filepath.Join(s.dir, "data")
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("postgres: as root, need user nobody: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(scratch, uid, gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return nil, err
		}
		s.as = []string{"runuser", "-u", "nobody", "--"}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("postgres: initdb: %w\n%s", err, out)
	}
	// Durable commits, as a database of record has them; fsync off only
	// spares the shared disk (the processes are what may die here).
	opts := fmt.Sprintf("-p %d -k %s -h 127.0.0.1 -c fsync=off -c synchronous_commit=on", port, s.dir)
	if out, err := s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return nil, fmt.Errorf("postgres: pg_ctl start: %w\n%s", err, out)
	}
	s.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s, nil
}

func (s *pgServer) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string(nil), s.as...), filepath.Join(s.bin, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *pgServer) stop() { s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop") }

// dynaliteServer is dynalite on a free port.
type dynaliteServer struct {
	endpoint string
	cmd      *exec.Cmd
}

func startDynalite(scratch string) (*dynaliteServer, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("dynalite: node not found (scripts/install-deps.sh)")
	}
	var cli string
	cands := []string{os.Getenv("PETREL_DYNALITE")}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache/petrel-test/node_modules/dynalite/cli.js"))
	}
	cands = append(cands, "/usr/local/lib/node_modules/dynalite/cli.js", "/usr/lib/node_modules/dynalite/cli.js")
	for _, c := range cands {
		if _, err := os.Stat(c); c != "" && err == nil {
			cli = c
			break
		}
	}
	if cli == "" {
		return nil, errors.New("dynalite: cli.js not found (scripts/install-deps.sh, or PETREL_DYNALITE)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(scratch, "dynalite")
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--path", path,
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dynalite: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 400 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &dynaliteServer{endpoint: "http://" + addr, cmd: cmd}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("dynalite: not accepting connections after 20 s")
}

func (d *dynaliteServer) stop() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
}

// aggregate folds one cell's rounds: medians of throughput, latency and
// the per-round ratio to the baseline, errors summed, backlog and drain
// at their worst.
func aggregate(runs []BackendCell, base func(round int) float64) BackendCell {
	c := runs[0]
	if len(runs) == 1 {
		if b := base(0); b > 0 {
			c.VsBaseline = c.OpsPerSec / b
		}
		return c
	}
	var errs, ops int64
	for i, r := range runs {
		errs += r.Errors
		ops += r.Ops
		c.MaxBacklog = max(c.MaxBacklog, r.MaxBacklog)
		c.DrainSecs = max(c.DrainSecs, r.DrainSecs)
		c.RoundOps = append(c.RoundOps, r.OpsPerSec)
		if b := base(i); b > 0 {
			c.RoundRatio = append(c.RoundRatio, r.OpsPerSec/b)
		}
	}
	c.Errors, c.Ops = errs, ops
	c.ErrorRate = 0
	if ops+errs > 0 {
		c.ErrorRate = float64(errs) / float64(ops+errs)
	}
	c.OpsPerSec = median(runs, func(r BackendCell) float64 { return r.OpsPerSec })
	c.MeanUs = median(runs, func(r BackendCell) float64 { return r.MeanUs })
	c.P99us = median(runs, func(r BackendCell) float64 { return r.P99us })
	c.VsBaseline = median(c.RoundRatio, func(x float64) float64 { return x })
	return c
}
