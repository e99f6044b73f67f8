package cmdlog

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestLoggerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cmd.log")
	l, err := Open(Options{Dest: path})
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.NewRing("10.0.0.1:1"), l.NewRing("10.0.0.2:2")
	a.Put(&Record{Time: 1e6, Cmd: CmdSet, Result: ResStored, Key: []byte("x"), VLen: 1, RLen: 8})
	b.Put(&Record{Time: 2e6, Cmd: CmdGet, Result: ResHit, Key: []byte("x"), VLen: 1, RLen: 20})
	a.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	want := []string{
		strings.TrimSuffix(Header, "\n"),
		"1.000000 10.0.0.1:1 set x 0 1 0 stored 8",
		"2.000000 10.0.0.2:2 get x 0 1 0 hit 20",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := l.Stats()
	if st.Lines != 2 || st.Drops != 0 || st.Rings != 1 {
		t.Errorf("stats %+v: want 2 lines, 0 drops, 1 ring left (the released one forgotten)", st)
	}
}

// TestLoggerDropsCounted: a full ring refuses records and the logger's
// drop count includes them, also after the ring is released.
func TestLoggerDropsCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cmd.log")
	l, err := Open(Options{Dest: path, RingSize: 1024, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := l.NewRing("c")
	// No half-full wake-up: the drainer would race the Puts and take some
	// records before the ring fills. It drains on Close instead.
	r.wake = nil
	rec := Record{Cmd: CmdGet, Key: make([]byte, 28)}
	for range 50 {
		r.Put(&rec)
	}
	if d := l.Stats().Drops; d != 50-16 {
		t.Errorf("drops = %d, want %d", d, 50-16)
	}
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Drops != 50-16 || st.Lines != 16 {
		t.Errorf("after close: %+v, want 34 drops and 16 lines", st)
	}
}

// TestLoggerRotation writes past MaxSize several times: the files are
// PATH, PATH.1 .. PATH.Keep, each starting with the header, none larger
// than MaxSize, and the newest lines are in PATH.
func TestLoggerRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cmd.log")
	const maxSize = 400
	l, err := Open(Options{Dest: path, MaxSize: maxSize, Keep: 2, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := l.NewRing("c")
	for i := range 40 { // about 40 bytes a line: 4 files' worth
		r.Put(&Record{Time: int64(i) * 1e6, Cmd: CmdGet, Key: fmt.Appendf(nil, "k%02d", i)})
	}
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "cmd.log,cmd.log.1,cmd.log.2" {
		t.Fatalf("files %v, want cmd.log, cmd.log.1, cmd.log.2", names)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, _ := os.Stat(p)
		if fi.Size() > maxSize {
			t.Errorf("%s has %d bytes, over %d", n, fi.Size(), maxSize)
		}
		if lines := readLines(t, p); lines[0]+"\n" != Header {
			t.Errorf("%s starts with %q, want the header", n, lines[0])
		}
	}
	last := readLines(t, path)
	if !strings.Contains(last[len(last)-1], " k39 ") {
		t.Errorf("newest line %q is not the last record", last[len(last)-1])
	}
	if st := l.Stats(); st.Rotations < 3 {
		t.Errorf("rotations = %d, want at least 3", st.Rotations)
	}
}

// TestLoggerRestartRotates: opening over an existing log keeps it as PATH.1.
func TestLoggerRestartRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cmd.log")
	if err := os.WriteFile(path, []byte(Header+"1.000000 c get old 0 0 0 miss 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Dest: path, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path+".1"); len(got) != 2 || !strings.Contains(got[1], " old ") {
		t.Errorf("old log not kept as .1: %q", got)
	}
	if got := readLines(t, path); len(got) != 1 {
		t.Errorf("new log %q, want the header only", got)
	}
}

func TestLoggerUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := Open(Options{Dest: "udp://" + pc.LocalAddr().String(), HashKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	r := l.NewRing("c")
	for i := range 60 { // more than one datagram's worth
		r.Put(&Record{Time: 1e6, Cmd: CmdGet, Result: ResMiss, Key: fmt.Appendf(nil, "key%d", i)})
	}
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	lines := 0
	for lines < 60 {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d lines: %v", lines, err)
		}
		if n > maxDatagram {
			t.Errorf("datagram of %d bytes", n)
		}
		d := strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
		if d[0]+"\n" != Header {
			t.Errorf("datagram starts %q, want the header", d[0])
		}
		for _, ln := range d[1:] {
			if !strings.HasPrefix(strings.Fields(ln)[3], "h:") {
				t.Errorf("key not hashed in %q", ln)
			}
			lines++
		}
	}
	if st := l.Stats(); st.Lines != 60 {
		t.Errorf("lines = %d, want 60", st.Lines)
	}
}

func TestLoggerTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		var lines []string
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()
	l, err := Open(Options{Dest: "tcp://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	r := l.NewRing("c")
	r.Put(&Record{Time: 1e6, Cmd: CmdDelete, Result: ResDeleted, Key: []byte("k"), RLen: 9})
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := <-got
	want := []string{strings.TrimSuffix(Header, "\n"), "1.000000 c delete k 0 0 0 deleted 9"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("collector got %q, want %q", lines, want)
	}
}

func TestOpenErrors(t *testing.T) {
	f := func(o Options) {
		t.Helper()
		if l, err := Open(o); err == nil {
			_ = l.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
	f(Options{})
	f(Options{Dest: filepath.Join(t.TempDir(), "no", "such", "dir", "log")})
	f(Options{Dest: "tcp://no-port"})
	f(Options{Dest: "x", Sample: -1})
}

func TestSampleStart(t *testing.T) {
	l, err := Open(Options{Dest: filepath.Join(t.TempDir(), "log"), Sample: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[int]bool{}
	for range 1000 {
		n := l.SampleStart()
		if n < 0 || n >= 10 {
			t.Fatalf("SampleStart() = %d, want 0..9", n)
		}
		seen[n] = true
	}
	if len(seen) < 5 {
		t.Errorf("SampleStart took only %d distinct values in 1000 calls", len(seen))
	}
}
