package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Restart time (issue #4): how long a durable server takes from start to
// serving the data it had. Petrel loads its memory tier from Pebble and
// replays the journal tail (docs/durability.md; at once, on all cores,
// when they fit in memory) before it opens its listeners, so it is ready
// when a get answers; Redis loads its AOF (an
// RDB preamble plus the commands since the last rewrite, Redis 7's
// default) while answering -LOADING, so it is ready when PING answers and
// `INFO persistence` says loading:0.

// RestartRow is one server restarted over one data set.
type RestartRow struct {
	Server      string  `json:"server"` // "petrel" or "redis"
	Mode        string  `json:"mode"`
	Items       int     `json:"items"`
	ValueBytes  int     `json:"value_bytes"`
	ServerCmd   string  `json:"server_command"`
	LoadCommand string  `json:"load_command"`
	LoadSeconds float64 `json:"load_seconds"`
	LoadPerSec  float64 `json:"load_per_sec"`
	StopSeconds float64 `json:"stop_seconds"` // SIGTERM to exit
	DiskBytes   int64   `json:"disk_bytes"`   // data directory after the stop
	// RestartSeconds is start to ready: a get answered (Petrel), PING
	// answered and loading:0 (Redis).
	RestartSeconds float64 `json:"restart_seconds"`
	ItemsPerSec    float64 `json:"items_per_sec"`
	DiskMBPerSec   float64 `json:"disk_mb_per_sec"` // data directory bytes over restart seconds
	ItemsAfter     int64   `json:"items_after"`     // curr_items or DBSIZE once ready
	// Petrel's own account of its warm-up, from `stats`.
	WarmupSeconds float64 `json:"warmup_seconds,omitempty"`
	WarmupRecords float64 `json:"warmup_records,omitempty"` // journal records replayed
	WarmupItems   float64 `json:"warmup_items,omitempty"`
	WarmupBytes   float64 `json:"warmup_bytes,omitempty"`
	JournalBytes  float64 `json:"journal_bytes_at_stop,omitempty"`
	Backlog       float64 `json:"storer_backlog_at_stop,omitempty"`
	// Rates from Petrel's "warm-up done" log lines: loading the memory
	// tier from Pebble, and replaying the journal tail.
	StoreMiBps   float64  `json:"store_load_mib_per_sec,omitempty"`
	JournalMiBps float64  `json:"journal_replay_mib_per_sec,omitempty"`
	LogLines     []string `json:"log_lines,omitempty"`
	LoadAvg      string   `json:"load_avg"`
}

// restartBench loads each item count into Petrel (async journal) and into
// Redis (appendfsync everysec), stops each with SIGTERM and times its
// restart.
func restartBench(o *options) ([]RestartRow, []string) {
	var rows []RestartRow
	var fails []string
	mb := max(o.memoryMB, 4096)
	for _, f := range strings.Split(o.restartItems, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fails = append(fails, fmt.Sprintf("restart: bad item count %q", f))
			continue
		}
		petrel := func(dir string) func(int) []string {
			return func(p int) []string {
				return petrelArgs(o, p, mb, "--data-dir "+dir+" --durability async")
			}
		}
		redis := func(dir string) func(int) []string {
			return func(p int) []string {
				return []string{"--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--save", "",
					"--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir}
			}
		}
		for _, sv := range []struct {
			server, mode, bin, proto string
			args                     func(dir string) func(int) []string
		}{{"petrel", "async", o.petrel, "text", petrel}, {"redis", "appendfsync everysec", o.redis, "resp", redis}} {
			row, err := restartOne(o, sv.server, sv.mode, sv.bin, sv.proto, sv.args, n)
			if err != nil {
				fails = append(fails, err.Error())
				logf("  failed: %v", err)
				continue
			}
			logf("  %s %d items: restart %.2f s (%.0f items/s, %.1f MB/s of data dir), load %.0f/s, warm-up %.2f s",
				sv.server, n, row.RestartSeconds, row.ItemsPerSec, row.DiskMBPerSec, row.LoadPerSec, row.WarmupSeconds)
			rows = append(rows, row)
		}
	}
	return rows, fails
}

func restartOne(o *options, name, mode, bin, proto string, argsFor func(dir string) func(int) []string, n int) (RestartRow, error) {
	row := RestartRow{Server: name, Mode: mode, Items: n, ValueBytes: 100, LoadAvg: loadAvg()}
	dir, err := os.MkdirTemp(o.scratch, "petrel-restart-")
	if err != nil {
		return row, fmt.Errorf("restart: %w", err)
	}
	defer os.RemoveAll(dir)
	s, err := start(name, bin, argsFor(dir))
	if err != nil {
		return row, err
	}
	row.ServerCmd = s.command()
	logf("restart %s: loading %d items", name, n)
	r, err := client(o, s, fmt.Sprintf("restart-load-%d", n), 0, "-protocol", proto, "-keys", strconv.Itoa(n),
		"-value", "fixed:100", "-key-size", "fixed:16", "-conns", "50", "-preload", "-duration", "0")
	if err != nil {
		s.stop()
		return row, err
	}
	row.LoadCommand = r.Command
	if p := r.Result.Preload; p != nil {
		row.LoadSeconds, row.LoadPerSec = p.Seconds, p.PerSec
	}
	if name == "petrel" {
		if st, err := s.stats(); err == nil {
			row.JournalBytes, _ = strconv.ParseFloat(st["journal_bytes_on_disk"], 64)
			row.Backlog, _ = strconv.ParseFloat(st["storer_backlog_records"], 64)
		}
	}
	t := time.Now()
	if err := stopWait(s, 10*time.Minute); err != nil {
		return row, err
	}
	row.StopSeconds = time.Since(t).Seconds()
	row.DiskBytes = dirSize(dir)

	logf("restart %s: restarting over %d MB", name, row.DiskBytes>>20)
	port, err := freePort()
	if err != nil {
		return row, err
	}
	s = &server{name: name, bin: bin, args: argsFor(dir)(port), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	t = time.Now()
	if err := s.cmd.Start(); err != nil {
		return row, fmt.Errorf("restart %s: %w", name, err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	defer s.stop()
	if err := waitReady(s, name, 10*time.Minute); err != nil {
		return row, err
	}
	row.RestartSeconds = time.Since(t).Seconds()
	row.ItemsPerSec = float64(n) / row.RestartSeconds
	row.DiskMBPerSec = float64(row.DiskBytes) / 1e6 / row.RestartSeconds
	if name == "petrel" {
		st, err := s.stats()
		if err == nil {
			row.WarmupSeconds, _ = strconv.ParseFloat(st["warmup_seconds"], 64)
			row.WarmupRecords, _ = strconv.ParseFloat(st["warmup_records"], 64)
			row.WarmupItems, _ = strconv.ParseFloat(st["warmup_items"], 64)
			row.WarmupBytes, _ = strconv.ParseFloat(st["warmup_bytes"], 64)
			row.ItemsAfter, _ = strconv.ParseInt(st["curr_items"], 10, 64)
		}
	} else if v, err := redisCmd(s.addr, "DBSIZE"); err == nil {
		row.ItemsAfter, _ = strconv.ParseInt(strings.TrimPrefix(v, ":"), 10, 64)
	}
	if err := stopWait(s, 10*time.Minute); err != nil {
		return row, err
	}
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, "warm-up") || strings.Contains(l, "journal") || strings.Contains(l, "Loading") ||
			strings.Contains(l, "loaded") || strings.Contains(l, "Done loading") || strings.Contains(l, "Ready to accept") {
			row.LogLines = append(row.LogLines, strings.TrimSpace(l))
		}
		if m := warmDone.FindStringSubmatch(l); m != nil {
			mib, _ := strconv.ParseFloat(m[2], 64)
			d, err := time.ParseDuration(m[3])
			if err != nil || d <= 0 {
				continue
			}
			if m[1] == "replaying journal" {
				row.JournalMiBps = mib / d.Seconds()
			} else {
				row.StoreMiBps = mib / d.Seconds()
			}
		}
	}
	return row, nil
}

// warmDone matches Petrel's summary of one warm-up phase, e.g. "warm-up
// done: replaying journal: 5146/5146 records (100.0%), 0.8 MiB, 287914
// records/s, ETA 0s in 18ms".
var warmDone = regexp.MustCompile(`warm-up done: ([a-z ]+): .*?, ([0-9.]+) MiB, .* in (\S+)$`)

// stopWait sends SIGTERM and waits for the exit, killing after timeout.
func stopWait(s *server, timeout time.Duration) error {
	if s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM", s.name, timeout)
	}
}

// waitReady polls until the restarted server serves: a get answered
// (Petrel), or PING answered and loading:0 (Redis).
func waitReady(s *server, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during restart: %s", name, strings.TrimSpace(s.log.String()))
		default:
		}
		if name == "petrel" {
			if v, err := textCmd(s.addr, "get restart-probe"); err == nil && v == "END" {
				return nil
			}
		} else if v, err := redisCmd(s.addr, "PING"); err == nil && v == "+PONG" {
			if info, err := redisCmd(s.addr, "INFO persistence"); err == nil && strings.Contains(info, "loading:0") {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v", name, timeout)
}

// textCmd sends one memcached text command and returns the first line.
func textCmd(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// redisCmd sends one inline Redis command and returns a simple reply's line
// or a bulk reply's body.
func redisCmd(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	if n, ok := strings.CutPrefix(line, "$"); ok {
		size, err := strconv.Atoi(n)
		if err != nil || size < 0 {
			return line, err
		}
		body := make([]byte, size+2)
		_, err = io.ReadFull(rd, body)
		return string(body[:size]), err
	}
	return line, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func restartMarkdown(s *Summary) string {
	if len(s.Restart) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Each server loaded the items (16 B keys, 100 B values) with `petrel bench -preload -conns 50` (exact commands in summary.json), "+
		"was stopped with SIGTERM and restarted over the same directory; Petrel ran with `-m %d`. Restart time is from the process start to a `get` answered (Petrel) "+
		"or to `PING` answered and `loading:0` (Redis). Petrel loads the store and replays the journal at once when both fit in memory, "+
		"so its two MiB/s columns are rates measured side by side, each over its own duration.\n\n", max(4096, s.Options.MemoryMB))
	b.WriteString("| restart | mode | items | data dir MB | load sets/s | stop s | restart s | items/s | data-dir MB/s | items after | Petrel warm-up s (journal records replayed) | Pebble load MiB/s | journal replay MiB/s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, r := range s.Restart {
		warm, store, replay := "–", "–", "–"
		if r.Server == "petrel" {
			warm = fmt.Sprintf("%.2f (%.0f)", r.WarmupSeconds, r.WarmupRecords)
			store, replay = fmt.Sprintf("%.0f", r.StoreMiBps), fmt.Sprintf("%.0f", r.JournalMiBps)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %.2f | %.2f | %.0f | %.1f | %d | %s | %s | %s |\n", r.Server, r.Mode, r.Items,
			float64(r.DiskBytes)/1e6, r.LoadPerSec, r.StopSeconds, r.RestartSeconds, r.ItemsPerSec, r.DiskMBPerSec, r.ItemsAfter, warm, store, replay)
	}
	b.WriteString("\n")
	for _, r := range s.Restart {
		if len(r.LogLines) > 0 {
			fmt.Fprintf(&b, "%s, %d items, restart log:\n\n", r.Server, r.Items)
			for _, l := range r.LogLines {
				fmt.Fprintf(&b, "    %s\n", l)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func restartSVG(s *Summary) []byte {
	var secs, rate []bar
	for _, n := range restartCounts(s) {
		b := bar{label: short(float64(n)) + " items"}
		r := b
		for _, x := range s.Restart {
			if x.Items != n {
				continue
			}
			if x.Server == "redis" {
				b.ref, r.ref = x.RestartSeconds, x.ItemsPerSec
			} else {
				b.mine, r.mine = x.RestartSeconds, x.ItemsPerSec
			}
		}
		if b.ref > 0 && b.mine > 0 {
			b.note = ratioText(b.mine / b.ref)
		}
		secs, rate = append(secs, b), append(rate, r)
	}
	return barsSVG("Restart: start to serving, 100 B values", "Redis 7 (AOF)",
		[]string{"restart, seconds (lower is better)", "items loaded per second"}, [][]bar{secs, rate})
}

func restartCounts(s *Summary) []int {
	var ns []int
	for _, r := range s.Restart {
		if len(ns) == 0 || ns[len(ns)-1] != r.Items {
			ns = append(ns, r.Items)
		}
	}
	return ns
}
