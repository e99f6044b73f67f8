// Command journal measures durable appends per second of the local journal
// (internal/journal) on this machine's disk, at several numbers of
// concurrent appenders. Each appender loops: append a 100-byte set record,
// wait until it is durable. Group commit is what makes the rate grow with
// the number of appenders; records per group shows how well fsyncs are
// shared.
//
// Run it from the repository root:
//
//	go run ./bench/journal -dir /var/tmp/petrel-journal-bench -d 5s
//
// REFERENCE.md's simple group-commit loop reached 4k, 17k, 77k and 119k
// durable writes/s at 1, 8, 64 and 256 writers on this disk.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/journal"
)

func main() {
	dir := flag.String("dir", "", "directory for the journal (default: a new temporary directory, removed afterwards)")
	dur := flag.Duration("d", 5*time.Second, "duration of each level")
	levels := flag.String("writers", "1,8,64,256", "comma-separated numbers of concurrent appenders")
	size := flag.Int("value", 100, "value bytes per record")
	async := flag.Bool("async", false, "ModeAsync (fdatasync every second) instead of ModeSync")
	flag.Parse()
	if err := run(*dir, *dur, *levels, *size, *async); err != nil {
		fmt.Fprintln(os.Stderr, "journal bench:", err)
		os.Exit(1)
	}
}

func run(dir string, dur time.Duration, levels string, size int, async bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "petrel-journal-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	mode := journal.ModeSync
	if async {
		mode = journal.ModeAsync
	}
	fmt.Printf("# journal bench: mode %v, %d-byte values, %v per level, GOMAXPROCS %d, dir %s\n",
		mode, size, dur, runtime.GOMAXPROCS(0), dir)
	fmt.Printf("%8s %12s %14s %10s %12s %12s\n", "writers", "appends/s", "records/group", "groups", "avg fsync", "max fsync")
	for _, l := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -writers entry %q", l)
		}
		sub, err := os.MkdirTemp(dir, "w"+strconv.Itoa(n)+"-")
		if err != nil {
			return err
		}
		if err := level(sub, n, dur, size, mode); err != nil {
			return err
		}
		os.RemoveAll(sub)
	}
	return nil
}

func level(dir string, writers int, dur time.Duration, size int, mode journal.Mode) error {
	j, err := journal.Open(journal.Options{Dir: dir, Mode: mode})
	if err != nil {
		return err
	}
	var (
		stop  atomic.Bool
		count atomic.Uint64
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := journal.Record{Type: journal.TypeSet, Key: []byte("bench:key:" + strconv.Itoa(w)), Value: make([]byte, size)}
			for !stop.Load() {
				r.CAS = 0
				seq, err := j.Append(&r)
				if err == nil {
					err = j.WaitDurable(seq)
				}
				if err != nil {
					once.Do(func() { first = err })
					return
				}
				count.Add(1)
			}
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	st := j.Stats()
	if err := j.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return first
	}
	fmt.Printf("%8d %12.0f %14.1f %10d %12v %12v\n", writers, float64(count.Load())/elapsed.Seconds(),
		st.RecordsPerGroup(), st.Groups, st.AvgSync().Round(time.Microsecond),
		time.Duration(st.SyncMaxNanos).Round(time.Microsecond))
	return nil
}
