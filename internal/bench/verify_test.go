package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// need finds a program, or skips the test; with PETREL_REQUIRE_DEPS=1 (set
// by `make test`, which has just installed everything) it fails instead.
func need(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PETREL_REQUIRE_DEPS") == "1" {
			t.Fatalf("%s not installed", name)
		}
		t.Skipf("%s not installed", name)
	}
	return bin
}

// startMemcached runs the real memcached on a free loopback port.
func startMemcached(t *testing.T) string {
	t.Helper()
	bin := need(t, "memcached")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "1", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // memcached refuses to run as root
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start memcached: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("memcached did not start on %s", addr)
	return ""
}

func verifyConfig(addr, proto string) Config {
	c := Default()
	c.Server, c.Protocol = addr, proto
	c.Conns, c.Depth, c.Threads = 4, 8, 2
	c.Duration, c.Ops = 0, 20000
	c.Keys, c.Preload, c.Verify, c.Quiet = 500, true, true, true
	c.Value, c.Ratio, c.Delete, c.Incr, c.MultiGet = "uniform:0,3000", "3:1", 0.05, 0.02, 3
	return c
}

func TestVerifyAgainstMemcached(t *testing.T) {
	addr := startMemcached(t)
	f := func(proto string, zipf float64) {
		t.Helper()
		c := verifyConfig(addr, proto)
		c.Zipf = zipf
		c.Prefix = "v" + proto + ":"
		c.Scan = true
		r, err := Run(context.Background(), c, nil)
		if err != nil {
			t.Fatalf("%s: run: %v", proto, err)
		}
		if r.Mismatches != 0 || r.ErrorCount != 0 {
			t.Errorf("%s: %d mismatches %v, errors %v", proto, r.Mismatches, r.Samples, r.Errors)
		}
		if r.Ops != c.Ops || r.Verified == 0 || r.Hits == 0 || r.Preload.Requests != int64(c.Keys) {
			t.Errorf("%s: ops %d, verified %d, hits %d, preloaded %d", proto, r.Ops, r.Verified, r.Hits, r.Preload.Requests)
		}
		// An incr that misses creates its counter, so later incrs hit.
		if r.Incrs == 0 || r.Adds == 0 || r.Adds >= r.Incrs {
			t.Errorf("%s: %d incrs, %d adds", proto, r.Incrs, r.Adds)
		}
		// Nothing is evicted from 64 MB, so the scan finds every key.
		if r.Scan.Found != int64(c.Keys) || r.Scan.FoundBytes < int64(c.Keys)*16 {
			t.Errorf("%s: scan found %d keys, %d bytes; want %d keys", proto, r.Scan.Found, r.Scan.FoundBytes, c.Keys)
		}
	}
	f("text", 0)
	f("meta", 1.0)
}

// fakeServer is a fake memcached for tests: a map behind the text get and
// set commands, which flips one byte of every corruptEvery-th value it
// returns (0: never).
type fakeServer struct {
	ln           net.Listener
	mu           sync.Mutex
	data         map[string][]byte
	served       int
	corruptEvery int
}

func startFake(t *testing.T, corruptEvery int) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, data: map[string][]byte{}, corruptEvery: corruptEvery}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "get":
			for _, k := range f[1:] {
				s.mu.Lock()
				v, ok := s.data[k]
				if ok {
					s.served++
					if s.corruptEvery > 0 && s.served%s.corruptEvery == 0 && len(v) > 0 {
						v = bytes.Clone(v)
						v[len(v)/2] ^= 1
					}
				}
				s.mu.Unlock()
				if ok {
					fmt.Fprintf(w, "VALUE %s 0 %d\r\n%s\r\n", k, len(v), v)
				}
			}
			w.WriteString("END\r\n")
		case len(f) == 5 && f[0] == "set":
			n, _ := strconv.Atoi(f[4])
			v := make([]byte, n+2)
			if _, err := io.ReadFull(r, v); err != nil {
				return
			}
			s.mu.Lock()
			s.data[f[1]] = v[:n]
			s.mu.Unlock()
			w.WriteString("STORED\r\n")
		default:
			w.WriteString("ERROR\r\n")
		}
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
}

func TestVerifyCatchesCorruption(t *testing.T) {
	f := func(corruptEvery int, wantMismatch bool) {
		t.Helper()
		s := startFake(t, corruptEvery)
		c := verifyConfig(s.ln.Addr().String(), "text")
		c.Delete, c.Incr, c.Value = 0, 0, "uniform:1,500"
		r, err := Run(context.Background(), c, nil)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := r.Mismatches > 0; got != wantMismatch {
			t.Errorf("corrupt every %d: %d mismatches (%v), want some: %v", corruptEvery, r.Mismatches, r.Samples, wantMismatch)
		}
		if r.Verified == 0 {
			t.Errorf("corrupt every %d: nothing verified", corruptEvery)
		}
	}
	f(0, false)
	f(50, true)
}

func TestNullServer(t *testing.T) {
	c := Default()
	c.Server, c.Conns, c.Depth, c.Duration, c.Ops, c.Quiet = "null", 2, 4, 0, 5000, true
	f := func(proto string) {
		t.Helper()
		c.Protocol = proto
		r, err := Run(context.Background(), c, nil)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if r.Ops != 5000 || r.Hits != 0 || r.ErrorCount != 0 || r.Latency.Max <= 0 {
			t.Errorf("%s: ops %d hits %d errors %v max latency %v", proto, r.Ops, r.Hits, r.Errors, r.Latency.Max)
		}
	}
	f("text")
	f("meta")
}

// The RESP mode, for the durable comparisons, against a real Redis.
func TestVerifyAgainstRedis(t *testing.T) {
	bin := need(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("redis did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := verifyConfig(addr, "resp")
	c.TTL = "uniform:100,200"
	r, err := Run(context.Background(), c, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if r.Mismatches != 0 || r.ErrorCount != 0 || r.Verified == 0 || r.Incrs == 0 || r.Deletes == 0 {
		t.Errorf("resp: %d mismatches %v, errors %v, %d verified, %d incrs, %d deletes",
			r.Mismatches, r.Samples, r.Errors, r.Verified, r.Incrs, r.Deletes)
	}
}
