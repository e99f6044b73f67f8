// Command compare runs Petrel beside the reference servers in one run and
// reports ratios, in the spirit of the DESIGN rule "measured, not asserted".
//
// For each workload file it starts memcached (Debian's 1.6) and Petrel with
// the same memory limit and thread count, and drives them alternately (A B
// A B …, several rounds) with `petrel bench` as the client, so slow drifts of
// a shared machine hit both servers alike. It reports per workload the median
// over rounds of the Petrel/memcached ratio of throughput, p99 latency and
// resident memory. It then cross-checks one workload with memcslap from
// libmemcached-tools, so our own generator is not the only witness, loads
// the same items into each server to compare memory per stored item, and,
// when asked, compares durable modes with Redis's appendfsync.
//
//	go run ./bench/compare [-rounds 3] [-duration 5s] [-only etc,set-only]
//
// Results go to bench/results/<date>-<name>/: summary.json, one JSON file per
// run, table.md and one SVG plot per matrix.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"petrel/internal/bench"
)

type options struct {
	name, out, workloads, only string
	rounds                     int
	duration                   time.Duration
	threads, clientThreads     int
	memoryMB                   int
	petrel, petrelArgs         string
	memcached, memcslap, redis string
	build, crossCheck, memory  bool
	memoryItems, memoryMB2     int
	durable                    bool
	storerBusy                 bool
	petrelDurable              string
	profile                    string
	matrix                     bool
	scratch                    string // parent of the servers' data directories
	restart                    bool
	restartItems               string
	cmdlog                     bool
	replot                     string
}

func main() {
	var o options
	flag.StringVar(&o.name, "name", "matrix", "name of this comparison, used in the results directory")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/<date>-<name>)")
	flag.StringVar(&o.workloads, "workloads", "bench/workloads/*.toml", "workload files (glob)")
	flag.StringVar(&o.only, "only", "", "comma list of workload names to run (default all)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of A B per workload")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measuring time per run")
	flag.IntVar(&o.threads, "threads", 2, "server threads (memcached -t, petrel -t)")
	flag.IntVar(&o.clientThreads, "client-threads", 2, "petrel bench threads")
	flag.IntVar(&o.memoryMB, "memory", 1024, "server memory limit in MB (-m)")
	flag.StringVar(&o.petrel, "petrel", "bin/petrel", "petrel binary (server and client)")
	flag.StringVar(&o.petrelArgs, "petrel-args", "", "extra arguments for petrel serve")
	flag.StringVar(&o.memcached, "memcached", "/usr/bin/memcached", "memcached binary")
	flag.StringVar(&o.memcslap, "memcslap", "/usr/bin/memcslap", "memcslap binary for the cross-check")
	flag.StringVar(&o.redis, "redis", "/usr/bin/redis-server", "redis-server binary for the durable matrix")
	flag.BoolVar(&o.build, "build", true, "build the petrel binary first (go build -o $petrel ./cmd/petrel)")
	flag.BoolVar(&o.crossCheck, "crosscheck", true, "cross-check with memcslap")
	flag.BoolVar(&o.memory, "memory-bench", true, "run the memory benchmark")
	flag.IntVar(&o.memoryItems, "memory-items", 5000000, "items to load in the memory benchmark")
	flag.IntVar(&o.memoryMB2, "memory-bench-mb", 1024, "memory limit in MB for the memory benchmark")
	flag.BoolVar(&o.durable, "durable", false, "run the durable matrix against Redis, then the storer-busy gets")
	flag.BoolVar(&o.storerBusy, "storer-busy", false, "run only the storer-busy gets of -durable")
	flag.StringVar(&o.petrelDurable, "petrel-durable",
		"sync=--data-dir {dir} --durability sync;async=--data-dir {dir} --durability async --journal-sync-interval 1s;off=--durability off",
		`Petrel's durable modes as "mode=serve args;…" ({dir} becomes a fresh directory), for the durable matrix`)
	flag.BoolVar(&o.matrix, "matrix", true, "run the workload matrix against memcached")
	flag.StringVar(&o.scratch, "scratch", "", "directory for the durable servers' data directories (default $TMPDIR)")
	flag.BoolVar(&o.restart, "restart", false, "time restarts of durable Petrel and Redis with -restart-items items (restart.go)")
	flag.StringVar(&o.restartItems, "restart-items", "1000000,10000000", "comma list of item counts for -restart")
	flag.BoolVar(&o.cmdlog, "cmdlog", false, "measure the command logger's overhead (cmdlog.go)")
	flag.StringVar(&o.profile, "profile", "get-set-10-1,twitter-zipf,value-10k", "comma list of workloads to profile Petrel on (CPU, block, mutex); empty for none")
	flag.StringVar(&o.replot, "replot", "", "rewrite table.md and the plots of this results directory from its summary.json, and exit")
	flag.Parse()
	if flag.Arg(0) == "backends" { // issue #5's table: backends.go
		if err := backendsMain(flag.Args()[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if o.replot != "" {
		if err := replot(o.replot); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// Summary is everything one comparison measured, as summary.json.
type Summary struct {
	Name     string       `json:"name"`
	Date     time.Time    `json:"date"`
	Command  string       `json:"command"`
	Machine  Machine      `json:"machine"`
	Options  OptionsJSON  `json:"options"`
	Matrix   []Row        `json:"matrix"`
	Runs     []Run        `json:"runs"`
	Cross    *CrossCheck  `json:"crosscheck,omitempty"`
	Memory   []MemoryRow  `json:"memory,omitempty"`
	Durable  []DurableRow `json:"durable,omitempty"`
	Busy     *StorerBusy  `json:"storer_busy,omitempty"`
	Restart  []RestartRow `json:"restart,omitempty"`
	Cmdlog   *CmdlogBench `json:"cmdlog,omitempty"`
	Notes    []string     `json:"notes,omitempty"`
	Failures []string     `json:"failures,omitempty"`
}

// Machine records where and with what the numbers were taken.
type Machine struct {
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Memcached string `json:"memcached"`
	Petrel    string `json:"petrel"`
	Memcslap  string `json:"memcslap,omitempty"`
	Redis     string `json:"redis,omitempty"`
	Commit    string `json:"commit,omitempty"`
	LoadStart string `json:"load_avg_start"` // 1, 5 and 15 minute load averages
	LoadEnd   string `json:"load_avg_end"`
}

// OptionsJSON are the knobs of the comparison.
type OptionsJSON struct {
	Rounds        int    `json:"rounds"`
	Duration      string `json:"duration"`
	ServerThreads int    `json:"server_threads"`
	ClientThreads int    `json:"client_threads"`
	MemoryMB      int    `json:"memory_mb"`
	PetrelArgs    string `json:"petrel_args,omitempty"`
}

func run(o *options) error {
	if o.out == "" {
		o.out = filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02")+"-"+o.name)
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
	files, err := filepath.Glob(o.workloads)
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no workload files match %q", o.workloads)
	}
	sum := &Summary{
		Name: o.name, Date: time.Now().UTC(), Command: commandLine(), Machine: machine(o),
		Options: OptionsJSON{Rounds: o.rounds, Duration: o.duration.String(), ServerThreads: o.threads,
			ClientThreads: o.clientThreads, MemoryMB: o.memoryMB, PetrelArgs: o.petrelArgs},
		Notes: []string{fmt.Sprintf("client and servers share the machine's %d cores", runtime.NumCPU())},
	}
	logf("results in %s; %d cores; %s vs %s", o.out, sum.Machine.Cores, sum.Machine.Petrel, sum.Machine.Memcached)
	for _, file := range files {
		wl, err := bench.ParseArgs("workload", []string{"-config", file})
		if err != nil {
			return err
		}
		if !o.matrix || o.only != "" && !slices.Contains(strings.Split(o.only, ","), wl.Name) {
			continue
		}
		row, runs, fails := matrixWorkload(o, file, wl.Name)
		sum.Matrix = append(sum.Matrix, row)
		sum.Runs = append(sum.Runs, runs...)
		sum.Failures = append(sum.Failures, fails...)
		logf("%s", row.line())
		if slices.Contains(strings.Split(o.profile, ","), wl.Name) {
			sum.Failures = append(sum.Failures, profileWorkload(o, file, wl.Name)...)
		}
	}
	if o.crossCheck {
		cc, fails := crossCheck(o)
		sum.Cross = cc
		sum.Failures = append(sum.Failures, fails...)
	}
	if o.memory {
		rows, fails := memoryBench(o)
		sum.Memory = rows
		sum.Failures = append(sum.Failures, fails...)
	}
	if o.durable {
		rows, notes, fails := durableMatrix(o)
		sum.Durable = rows
		sum.Notes = append(sum.Notes, notes...)
		sum.Failures = append(sum.Failures, fails...)
	}
	if o.durable || o.storerBusy {
		busy, fails2 := storerBusy(o)
		sum.Busy = busy
		sum.Failures = append(sum.Failures, fails2...)
	}
	if o.restart {
		rows, fails := restartBench(o)
		sum.Restart = rows
		sum.Failures = append(sum.Failures, fails...)
	}
	if o.cmdlog {
		cb, fails := cmdlogBench(o)
		sum.Cmdlog = cb
		sum.Failures = append(sum.Failures, fails...)
	}
	sum.Machine.LoadEnd = loadAvg()
	return write(o, sum)
}

func machine(o *options) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg(),
		Memcached: versionOf(o.memcached, "-V"), Petrel: "petrel " + versionOf(o.petrel, "version")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if o.crossCheck {
		m.Memcslap = versionOf(o.memcslap, "--version")
	}
	if o.durable || o.restart {
		m.Redis = versionOf(o.redis, "--version")
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func write(o *options, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	md := markdown(s)
	if err := os.WriteFile(filepath.Join(o.out, "table.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if len(s.Matrix) > 0 {
		if err := os.WriteFile(filepath.Join(o.out, "matrix.svg"), matrixSVG(s), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	if len(s.Memory) > 0 {
		if err := os.WriteFile(filepath.Join(o.out, "memory.svg"), memorySVG(s), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	if len(s.Durable) > 0 {
		if err := os.WriteFile(filepath.Join(o.out, "durable.svg"), durableSVG(s), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	if len(s.Restart) > 0 {
		if err := os.WriteFile(filepath.Join(o.out, "restart.svg"), restartSVG(s), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	if s.Cmdlog != nil {
		if err := os.WriteFile(filepath.Join(o.out, "cmdlog.svg"), cmdlogSVG(s), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	fmt.Print(md)
	return nil
}

func replot(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return fmt.Errorf("replot: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("replot: %s: %w", dir, err)
	}
	return write(&options{out: dir}, &s)
}

// commandLine is how this comparison was started, with `go run`'s
// temporary binary named as the command that builds it.
func commandLine() string {
	args := slices.Clone(os.Args)
	if strings.Contains(args[0], "go-build") {
		args[0] = "go run ./bench/compare"
	}
	return strings.Join(args, " ")
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
}
