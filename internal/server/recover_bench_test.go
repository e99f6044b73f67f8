package server

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// BenchmarkRestart times New over a data directory like the one the
// restart benchmark leaves (bench/compare -restart): n items of 16 B keys
// and 100 B values, the older half in Pebble and the rest in the journal
// tail, loaded one source after the other (sequential) or at once
// (parallel). PETREL_RESTART_ITEMS sets n (default 200000). The directory
// is built once and copied before each iteration, outside the timer.
func BenchmarkRestart(b *testing.B) {
	n := 200000
	if s := os.Getenv("PETREL_RESTART_ITEMS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	stored := n / 2
	if s := os.Getenv("PETREL_RESTART_STORED"); s != "" {
		var err error
		if stored, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	tmpl := restartTemplate(b, n, stored)
	f := func(name string, workers int) {
		b.Run(name, func(b *testing.B) {
			defer func() { testWarmWorkers = 0 }()
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "data")
				if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
					b.Fatalf("copy: %v: %s", err, out)
				}
				cfg := DefaultConfig()
				cfg.MemoryMB = 1024
				cfg.Durable.DataDir = dir
				cfg.Durable.Mode = DurabilityAsync
				testWarmWorkers = workers
				cpu0 := cpuTime()
				b.StartTimer()
				srv, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime() - cpu0
				srv.Shutdown()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
			// CPU time (all threads) tells what the wall time would be
			// with the cores to spare, on a shared machine.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
	f("sequential", 1)
	f("parallel", 0)
}

// restartTemplate returns a data directory holding n sets, of which the
// first stored are applied to Pebble. It is built once, in the temporary
// directory, and kept for later runs (building 1M items takes a while).
func restartTemplate(tb testing.TB, n, stored int) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("petrel-restart-bench-%d-%d", n, stored))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	val := make([]byte, 100)
	rnd := rand.New(rand.NewPCG(1, 2))
	recs := make([]journal.Record, n)
	for i := range recs {
		for k := range val {
			val[k] = byte(rnd.Uint32()) // incompressible, as the benchmark's values
		}
		recs[i] = journal.Record{Type: journal.TypeSet, Key: fmt.Appendf(nil, "key:%012d", i*7919%n), Value: bytes.Clone(val)}
	}
	writeDataDir(tb, dir, recs, stored, 32<<20, true)
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// writeDataDir writes recs to a journal in dir and applies the first stored
// of them to a Pebble store there, as the storer would have; with truncate
// the journal then drops its segments below stored+1, as the storer does
// once the store holds them durably.
func writeDataDir(tb testing.TB, dir string, recs []journal.Record, stored int, segSize int64, truncate bool) {
	tb.Helper()
	j, err := journal.Open(journal.Options{Dir: storage.JournalDir(dir), Mode: journal.ModeAsync, SegmentSize: segSize})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range recs {
		if recs[i].Seq, err = j.Append(&recs[i]); err != nil {
			tb.Fatal(err)
		}
		if recs[i].Type == journal.TypeSet {
			recs[i].CAS = recs[i].Seq
		}
	}
	if err := j.WaitDurable(uint64(len(recs))); err != nil {
		tb.Fatal(err)
	}
	p, err := storage.OpenPebble(storage.PebbleDir(dir), storage.PebbleOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < stored; i += 1000 {
		if err := p.Apply(context.Background(), recs[i:min(i+1000, stored)]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		tb.Fatal(err)
	}
	if truncate {
		if err := j.TruncateBelow(uint64(stored) + 1); err != nil {
			tb.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		tb.Fatal(err)
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
