package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const chromiumBin = "/usr/bin/chromium"

// TestStatusPageChromium loads the admin listener's status page in
// headless Chromium after known traffic and checks that the rendered DOM
// shows the live figures: items, hits and misses, the hit ratio, the
// connection count, the command logger's state and the analysis picture.
func TestStatusPageChromium(t *testing.T) {
	needFile(t, chromiumBin, "chromium (scripts/install-deps.sh)")
	adminPort := freePort(t, "tcp")
	dir := t.TempDir()
	analysis := filepath.Join(dir, "analysis")
	if err := os.Mkdir(analysis, 0o755); err != nil {
		t.Fatal(err)
	}
	svg := `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><text x="10" y="50">mrc</text></svg>`
	if err := os.WriteFile(filepath.Join(analysis, "mrc.svg"), []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "cmd.log")
	srv := startPetrel(t, listenOpts{args: []string{
		"--admin=127.0.0.1:" + strconv.Itoa(adminPort),
		"--cmdlog=" + logPath, "--cmdlog-sample=1",
		"--analysis-dir=" + analysis,
	}})

	const sets, hits, misses = 25, 10, 5
	c := srv.dial(t)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	for i := range sets {
		fmt.Fprintf(c, "set key%d 0 0 5\r\nvalue\r\n", i)
		if l, err := r.ReadString('\n'); err != nil || l != "STORED\r\n" {
			t.Fatalf("set: %q %v", l, err)
		}
	}
	for i := range hits + misses {
		fmt.Fprintf(c, "get key%d\r\n", i+sets-hits) // the last ten exist, five more do not
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "END\r\n" {
				break
			}
		}
	}

	dom := dumpDOM(t, "http://127.0.0.1:"+strconv.Itoa(adminPort)+"/?refresh=0")
	for _, want := range []string{
		`id="curr_items">25<`,
		`id="get_hits">10<`,
		`id="get_misses">5<`,
		`id="hit-ratio">66.7%<`,
		`id="curr-connections">1<`,
		`command log: on, 1 in 1, to ` + logPath,
		`journal: off`,
		`src="/analysis/mrc.svg"`,
		`id="segments_open"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("--- DOM:\n%s", dom)
	}
}

// dumpDOM renders url in headless Chromium and returns the DOM it built.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumBin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(out), "</html>") {
		t.Fatalf("chromium printed no document:\n%s\n--- stderr:\n%s", out, stderr.String())
	}
	return string(out)
}

// TestCmdlogServer runs a few commands through the real petrel binary
// with --cmdlog and checks the log line by line once it has shut down.
func TestCmdlogServer(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "cmd.log")
	srv := startPetrel(t, listenOpts{args: []string{"--cmdlog=" + logPath}})
	c := srv.dial(t)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	send := func(req string, replyLines int) {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		for range replyLines {
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("set k1 3 0 5\r\nhello\r\n", 1)
	send("get k1 k2\r\n", 3)
	send("incr k1 1\r\n", 1)
	send("mg k2 v\r\n", 1)
	send("delete k1\r\n", 1)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	client := c.LocalAddr().String()
	want := []string{
		"# petrel-cmdlog v1 fields=time,client,cmd,key,flags,vlen,ttl,result,rlen",
		client + " set k1 3 5 0 stored 8",
		client + " get k1 3 5 0 hit 21",
		client + " get k2 0 0 0 miss 5",
		client + " incr k1 0 0 0 error 62", // CLIENT_ERROR: "hello" is not a number
		client + " mg k2 0 0 0 miss 4",
		client + " delete k1 0 0 0 deleted 9",
	}
	if len(lines) != len(want) {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), len(want), b)
	}
	for i, ln := range lines {
		got := ln
		if i > 0 {
			// The time field: unix seconds with six decimals.
			ts, rest, _ := strings.Cut(ln, " ")
			if sec, frac, ok := strings.Cut(ts, "."); !ok || len(frac) != 6 || len(sec) < 10 {
				t.Errorf("line %d: time %q, want seconds.micros", i, ts)
			}
			got = rest
		}
		if got != want[i] {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
}
