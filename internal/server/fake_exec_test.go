package server

// A FAKE executor for testing the connection layer on its own, before (and
// independently of) the real protocol executors. It speaks a toy line
// protocol that exercises every field of the step contract:
//
//	echo WORD      -> WORD                       (counts cmd_get)
//	put N          -> N data bytes + CRLF follow; STORED, or, when N exceeds
//	                  the max item size, SERVER_ERROR object too large for cache
//	                  and the data is swallowed
//	stats [SECT]   -> the real statsPairs output, or ERROR
//	block          -> waits on the test's channel, then DONE
//	quit           -> closes the connection
//	anything else  -> ERROR

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"petrel/internal/stats"
)

type fakeExec struct {
	maxCap  atomic.Int64  // largest buffer capacity the executor was shown
	blocked chan struct{} // a `block` request signals here when it starts
	release chan struct{} // and waits for this
}

func newFakeExec() *fakeExec {
	return &fakeExec{blocked: make(chan struct{}, 16), release: make(chan struct{})}
}

func (f *fakeExec) exec(s *session, buf []byte) step {
	for {
		c := f.maxCap.Load()
		if int64(cap(buf)) <= c || f.maxCap.CompareAndSwap(c, int64(cap(buf))) {
			break
		}
	}
	i := bytes.Index(buf, []byte("\r\n"))
	if i < 0 {
		return step{}
	}
	line := string(buf[:i])
	n := i + 2
	word, arg, _ := strings.Cut(line, " ")
	switch word {
	case "echo":
		s.stats.Inc(stats.CmdGet)
		s.out = append(s.out, arg...)
		s.out = append(s.out, "\r\n"...)
	case "put":
		size, err := strconv.Atoi(arg)
		if err != nil {
			s.out = append(s.out, "CLIENT_ERROR bad data chunk\r\n"...)
			break
		}
		if size > s.srv.cfg.MaxItemSize {
			s.out = append(s.out, "SERVER_ERROR object too large for cache\r\n"...)
			return step{n: n, swallow: size + 2}
		}
		if len(buf) < n+size+2 {
			return step{need: n + size + 2}
		}
		n += size + 2
		s.out = append(s.out, "STORED\r\n"...)
	case "stats":
		ok := s.statsPairs(arg, func(k, v string) {
			s.out = append(s.out, "STAT "+k+" "+v+"\r\n"...)
		})
		if !ok {
			s.out = append(s.out, "ERROR\r\n"...)
			break
		}
		s.out = append(s.out, "END\r\n"...)
	case "block":
		f.blocked <- struct{}{}
		<-f.release
		s.out = append(s.out, "DONE\r\n"...)
	case "quit":
		return step{n: n, close: true}
	default:
		s.out = append(s.out, "ERROR\r\n"...)
	}
	return step{n: n}
}

// testConfig is a config for a loopback server on ephemeral ports, with the
// admin listener off unless a test turns it on.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminAddr = ""
	return cfg
}

// startServer runs a server with the fake executor until the test ends.
func startServer(t *testing.T, cfg Config) (*Server, *fakeExec) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	fe := newFakeExec()
	srv.exec = func(s *session, buf []byte) step { return fe.exec(s, buf) }
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(context.Background()); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Shutdown()
		wg.Wait()
	})
	return srv, fe
}

// client is a test connection with a line reader.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, network, addr string) *client {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	// A safety net so a broken server fails the test instead of hanging it.
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func dialTCP(t *testing.T, srv *Server) *client {
	t.Helper()
	return dial(t, "tcp", srv.Addrs()[0].String())
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line (got %q): %v", l, err)
	}
	return l
}

// expect reads one line and compares it.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectEOF checks that the server closed the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	if l, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("got %q, want the connection closed", l)
	}
}

// stats runs `stats SECTION` and returns the pairs.
func (c *client) stats(section string) map[string]string {
	c.t.Helper()
	cmd := "stats"
	if section != "" {
		cmd += " " + section
	}
	c.send(cmd + "\r\n")
	m := map[string]string{}
	for {
		l := strings.TrimSuffix(c.line(), "\r\n")
		if l == "END" {
			return m
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			c.t.Fatalf("bad stats line %q", l)
		}
		m[f[1]] = f[2]
	}
}

// waitFor polls cond; the tests never assert on timing, only on outcomes
// that some goroutine will reach.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialNoFail dials without failing the test, for probing a listener.
func dialNoFail(addr string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		nc.Close()
	}
	return nc, err
}
