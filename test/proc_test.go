package test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Generous limits: the machine running the suite may be heavily loaded, and
// a server built with -race starts slowly. They bound waiting, nothing is
// asserted about how long anything takes.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// listenOpts says how a server under test listens.
type listenOpts struct {
	unix bool     // listen on a unix socket only (-s); TCP is off then, as in memcached
	udp  bool     // also listen on a UDP port (-U)
	args []string // extra flags, e.g. -I 2m
}

// server is a server process under test: petrel or memcached.
type server struct {
	name    string
	network string // "tcp" or "unix"
	addr    string // host:port or socket path
	udpAddr string // host:port when started with udp, else ""

	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // the process's exit status, valid after exited
	mu     sync.Mutex
	stop   bool // Stop was called: an exit is expected
}

// startPetrel starts `petrel serve` on a fresh loopback port and waits until
// it accepts connections. It is stopped when the test ends.
func startPetrel(t testing.TB, o listenOpts) *server {
	t.Helper()
	return startServer(t, "petrel", petrel(t), petrelServe, o)
}

// petrelServe starts every petrel under test. The admin HTTP listener is
// off: its default port is fixed, and parallel servers would fight for it.
var petrelServe = []string{"serve", "--admin="}

// startMemcached starts the reference memcached the same way.
func startMemcached(t testing.TB, o listenOpts) *server {
	t.Helper()
	needFile(t, memcachedBin, "memcached")
	var pre []string
	if os.Geteuid() == 0 {
		pre = []string{"-u", "root"} // memcached refuses to run as root otherwise
	}
	return startServer(t, "memcached", memcachedBin, pre, o)
}

func startServer(t testing.TB, name, bin string, pre []string, o listenOpts) *server {
	t.Helper()
	s, err := startServerErr(t, name, bin, pre, o)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return s
}

func startServerErr(t testing.TB, name, bin string, pre []string, o listenOpts) (*server, error) {
	t.Helper()
	var lastErr error
	// A port picked free can be taken before the server binds it; retry then.
	for attempt := 0; attempt < 5; attempt++ {
		s, err := tryStart(t, name, bin, pre, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func tryStart(t testing.TB, name, bin string, pre []string, o listenOpts) (*server, error) {
	s := &server{name: name, network: "tcp", stderr: &lockedBuffer{}, exited: make(chan struct{})}
	args := append([]string{}, pre...)
	udpPort := 0
	if o.udp {
		udpPort = freePort(t, "udp")
		s.udpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(udpPort))
	}
	if o.unix {
		s.network = "unix"
		s.addr = filepath.Join(shortTempDir(t), name+".sock")
		args = append(args, "-s", s.addr, "-p", "0")
	} else {
		port := freePort(t, "tcp")
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args = append(args, "-l", "127.0.0.1", "-p", strconv.Itoa(port))
	}
	args = append(args, "-U", strconv.Itoa(udpPort))
	args = append(args, o.args...)

	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	s.cmd.Env = serverEnv()
	dieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s %v: %w", bin, args, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(o); err != nil {
		s.kill()
		return nil, fmt.Errorf("%s %s: %w\n--- its output:\n%s", bin, strings.Join(args, " "), err, s.stderr.String())
	}
	t.Cleanup(func() { s.shutdown(t) })
	return s, nil
}

// serverEnv is the test's environment without PETREL_* settings, which
// petrel would read as configuration, and with the race detector told to
// report every race rather than stop at the first.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PETREL_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=halt_on_error=0")
}

// waitReady polls until the server accepts a connection, or fails if the
// process exits first. A server with a data directory binds its port before
// it serves (it warms up first), and the kernel completes handshakes as soon
// as the port is bound; for it, waitReady waits for an answer to a request
// instead. Other servers get no request, which would show in their
// statistics and command log.
func (s *server) waitReady(o listenOpts) error {
	deadline := time.Now().Add(startTimeout)
	binaryOnly := slices.Contains(o.args, "binary")
	answer := slices.ContainsFunc(o.args, func(a string) bool { return strings.HasPrefix(a, "--data-dir") })
	for {
		err := s.probe(answer, binaryOnly)
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before serving (%v)", s.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving on %s %s after %v: %w", s.network, s.addr, startTimeout, err)
		}
	}
}

// probe connects; if answer, it also sends `version` (a binary one to a
// -B binary server) and succeeds when any reply byte arrives.
func (s *server) probe(answer, binaryOnly bool) error {
	c, err := net.DialTimeout(s.network, s.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if !answer {
		return nil
	}
	req := []byte("version\r\n")
	if binaryOnly {
		req = make([]byte, 24)
		req[0], req[1] = 0x80, 0x0b
	}
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// shutdown stops the server at the end of the test: SIGTERM, then SIGKILL
// after stopTimeout. It fails the test if the server died on its own during
// the test or reported a data race, and logs its output if the test failed.
func (s *server) shutdown(t testing.TB) {
	select {
	case <-s.exited:
		s.mu.Lock()
		stopped := s.stop
		s.mu.Unlock()
		if !stopped {
			t.Errorf("%s exited during the test: %v", s.name, s.err)
		}
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			// SIGTERM asks for a graceful shutdown, which ends with status 0
			// (under -race, 66 says the detector found a race).
			if s.name == "petrel" && s.err != nil {
				t.Errorf("petrel exited with %v after SIGTERM, want a clean exit", s.err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("%s did not exit within %v of SIGTERM; killing it", s.name, stopTimeout)
			s.kill()
		}
	}
	out := s.stderr.String()
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race", s.name)
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
		t.Errorf("%s panicked", s.name)
	}
	if t.Failed() && out != "" {
		t.Logf("--- %s output:\n%s", s.name, out)
	}
}

// Stop stops the server now (for tests about restarts) and waits for it.
func (s *server) Stop() error {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.kill()
		return errors.New(s.name + " ignored SIGTERM")
	}
	return nil
}

// expectExit tells shutdown that the server will exit on its own (the
// shutdown command), which is then not a crash.
func (s *server) expectExit() {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
}

func (s *server) kill() {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// dial opens a connection to the server's main listener.
func (s *server) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(s.network, s.addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// port is the server's TCP port as a string.
func (s *server) port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("picking a UDP port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("picking a TCP port: %v", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// shortTempDir is a temporary directory with a path short enough for a unix
// socket name (108 bytes), which t.TempDir under a long test name is not.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "petrel")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// lockedBuffer collects a process's output; the process writes it from
// exec's copying goroutine while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
