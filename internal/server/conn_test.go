package server

// Connection-layer tests, all driven through the fake executor in
// fake_exec_test.go.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPipelinedBatchAndSplitRequests(t *testing.T) {
	srv, _ := startServer(t, testConfig())
	c := dialTCP(t, srv)
	// Several requests in one write, and one split across writes.
	c.send("echo a\r\necho b\r\nput 3\r\nxyz\r\nput 5\r\nab")
	c.expect("a\r\n")
	c.expect("b\r\n")
	c.expect("STORED\r\n")
	c.send("cde\r\necho c\r\n")
	c.expect("STORED\r\n")
	c.expect("c\r\n")
	c.send("nonsense\r\n")
	c.expect("ERROR\r\n")
	c.send("quit\r\n")
	c.expectEOF()
}

func TestLargeValueWithinLimitGrowsBufferThenShrinks(t *testing.T) {
	cfg := testConfig()
	cfg.MaxItemSize = 1 << 20
	srv, fe := startServer(t, cfg)
	c := dialTCP(t, srv)
	val := strings.Repeat("v", 900<<10)
	c.send("put " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n")
	c.expect("STORED\r\n")
	c.send("echo after\r\n")
	c.expect("after\r\n")
	if got, limit := fe.maxCap.Load(), int64(cfg.MaxItemSize+2048); got > limit {
		t.Errorf("read buffer reached %d bytes, over the %d bound", got, limit)
	}
}

// A client sending a 2 MiB value to a server with -I 1m gets the error, the
// value is swallowed without being buffered, and the connection stays usable.
func TestOversizedValueIsSwallowedWithBoundedBuffer(t *testing.T) {
	cfg := testConfig()
	cfg.MaxItemSize = 1 << 20
	srv, fe := startServer(t, cfg)
	c := dialTCP(t, srv)
	val := strings.Repeat("x", 2<<20)
	go func() {
		_, _ = c.nc.Write([]byte("put " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\necho alive\r\n"))
	}()
	c.expect("SERVER_ERROR object too large for cache\r\n")
	c.expect("alive\r\n")
	if got, limit := fe.maxCap.Load(), int64(cfg.MaxItemSize+2048); got > limit {
		t.Errorf("read buffer reached %d bytes, over the %d bound", got, limit)
	}
	c.send("put 2\r\nok\r\n")
	c.expect("STORED\r\n")
}

func TestUnterminatedLineClosesAtBound(t *testing.T) {
	cfg := testConfig()
	cfg.MaxItemSize = 1024
	srv, fe := startServer(t, cfg)
	c := dialTCP(t, srv)
	go func() { _, _ = c.nc.Write([]byte(strings.Repeat("z", 64<<10))) }()
	c.expectEOF()
	if got, limit := fe.maxCap.Load(), int64(readBufSize); got > limit {
		t.Errorf("read buffer reached %d bytes, over the %d bound", got, limit)
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 2
	srv, _ := startServer(t, cfg)
	a, b := dialTCP(t, srv), dialTCP(t, srv)
	a.send("echo a\r\n")
	a.expect("a\r\n")
	b.send("echo b\r\n")
	b.expect("b\r\n")
	extra := dialTCP(t, srv)
	extra.expect("ERROR Too many open connections\r\n")
	extra.expectEOF()
	st := a.stats("")
	f := func(name, want string) {
		t.Helper()
		if st[name] != want {
			t.Errorf("stats %s = %q, want %q", name, st[name], want)
		}
	}
	f("max_connections", "2")
	f("curr_connections", "2")
	f("total_connections", "2")
	f("rejected_connections", "1")
	f("connection_structures", "2")
	// A slot frees up when a client leaves.
	b.send("quit\r\n")
	b.expectEOF()
	waitFor(t, "the connection count to drop", func() bool { return srv.currConns.Load() == 1 })
	d := dialTCP(t, srv)
	d.send("echo d\r\n")
	d.expect("d\r\n")
}

func TestIdleTimeoutClosesQuietConnections(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	srv, _ := startServer(t, cfg)
	c := dialTCP(t, srv)
	c.send("echo hi\r\n")
	c.expect("hi\r\n")
	c.expectEOF()
	waitFor(t, "the idle kick to be counted", func() bool { return srv.idleKicks.Load() == 1 })
	st := dialTCP(t, srv).stats("")
	if st["idle_kicks"] != "1" {
		t.Errorf("idle_kicks = %q, want 1", st["idle_kicks"])
	}
}

func TestGracefulShutdownFinishesInFlightBatch(t *testing.T) {
	srv, fe := startServer(t, testConfig())
	busy, quiet := dialTCP(t, srv), dialTCP(t, srv)
	quiet.send("echo q\r\n")
	quiet.expect("q\r\n")
	busy.send("block\r\necho after-block\r\n")
	<-fe.blocked
	done := make(chan struct{})
	go func() { srv.Shutdown(); close(done) }()
	waitFor(t, "shutdown to begin", srv.closing.Load)
	// New connections are refused while the batch is still running.
	waitFor(t, "the listener to close", func() bool {
		_, err := dialNoFail(srv.Addrs()[0].String())
		return err != nil
	})
	close(fe.release)
	busy.expect("DONE\r\n")
	busy.expect("after-block\r\n") // the rest of the batch ran too
	busy.expectEOF()
	quiet.expectEOF()
	<-done
}

func TestShutdownCommandStopsServe(t *testing.T) {
	cfg := testConfig()
	srv, _ := startServer(t, cfg)
	if srv.shutdownRequested() {
		t.Fatal("shutdown allowed without -A")
	}
	cfg.EnableShutdown = true
	srv2, _ := startServer(t, cfg)
	c := dialTCP(t, srv2)
	if !srv2.shutdownRequested() {
		t.Fatal("shutdown refused with -A")
	}
	c.expectEOF()
}

func TestUnixSocketRoundTrip(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	cfg.UnixSocket = filepath.Join(dir, "petrel.sock")
	cfg.UnixMask = 0o755
	// A stale socket file from a crashed run must not stop the bind.
	stale, err := listenUnix(cfg.UnixSocket, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	stale.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	stale.Close()
	srv, _ := startServer(t, cfg)
	fi, err := os.Stat(cfg.UnixSocket)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o755 {
		t.Errorf("socket mode %o, want 755", got)
	}
	if n := len(srv.Addrs()); n != 1 {
		t.Errorf("%d listeners, want only the unix socket", n)
	}
	c := dial(t, "unix", cfg.UnixSocket)
	c.send("echo unix\r\n")
	c.expect("unix\r\n")
	st := c.stats("settings")
	if st["domain_socket"] != cfg.UnixSocket || st["umask"] != "755" {
		t.Errorf("settings domain_socket=%q umask=%q", st["domain_socket"], st["umask"])
	}
}

func TestBinaryOnlyProtocolDropsTextClients(t *testing.T) {
	cfg := testConfig()
	cfg.Protocol = "binary"
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := srv.exec(&session{srv: srv}, []byte("get a\r\n"))
	if !st.close || st.n == 0 {
		t.Errorf("binary-only server accepted a text request: %+v", st)
	}
}

func TestBytesCounted(t *testing.T) {
	srv, _ := startServer(t, testConfig())
	c := dialTCP(t, srv)
	c.send("echo 12345\r\n")
	c.expect("12345\r\n")
	st := c.stats("")
	// The stats request itself is counted before it runs; its reply is not.
	if st["bytes_read"] != strconv.Itoa(len("echo 12345\r\nstats\r\n")) {
		t.Errorf("bytes_read = %s", st["bytes_read"])
	}
	if st["bytes_written"] != strconv.Itoa(len("12345\r\n")) {
		t.Errorf("bytes_written = %s", st["bytes_written"])
	}
	if st["cmd_get"] != "1" {
		t.Errorf("cmd_get = %s", st["cmd_get"])
	}
}

func TestLongPipelineAcrossBuffers(t *testing.T) {
	srv, _ := startServer(t, testConfig())
	c := dialTCP(t, srv)
	var b strings.Builder
	const n = 5000
	for i := range n {
		b.WriteString("echo " + strconv.Itoa(i) + "\r\n")
	}
	go func() { _, _ = c.nc.Write([]byte(b.String())) }()
	for i := range n {
		c.expect(strconv.Itoa(i) + "\r\n")
	}
}

// Between requests a connection keeps only its small idle buffer; the
// pooled read and reply buffers go back to their pools.
func TestIdleConnectionHoldsOnlySmallBuffer(t *testing.T) {
	srv, _ := startServer(t, testConfig())
	c := dialTCP(t, srv)
	val := strings.Repeat("v", 100<<10)
	c.send("put " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\necho " + val + "\r\n")
	c.expect("STORED\r\n")
	c.expect(val + "\r\n")
	// A small last request: the read that brought it did not fill a buffer.
	c.send("echo small\r\n")
	c.expect("small\r\n")
	// Pick this client's connection: another (a probe being torn down)
	// may still be in the set, and its fields are not ours to read.
	var sc *conn
	me := addrString(c.nc.LocalAddr())
	srv.mu.Lock()
	for k := range srv.conns {
		if k.remote == me {
			sc = k
		}
	}
	srv.mu.Unlock()
	if sc == nil {
		t.Fatalf("no server connection with remote address %s", me)
	}
	// The state store before the next read orders the buffer release before
	// this goroutine's reads below.
	waitFor(t, "the connection to wait for its next request", func() bool { return sc.state.Load() == stateWaiting })
	// Read under srv.mu, which finish takes before it releases the buffers:
	// that orders these reads before the teardown once the client closes
	// (a socket close is no synchronisation the race detector sees).
	srv.mu.Lock()
	_, open := srv.conns[sc]
	buf, bufp, out, outp := len(sc.buf), sc.bufp, sc.sess.out, sc.outp
	srv.mu.Unlock()
	if !open {
		t.Fatal("the connection closed while idle")
	}
	if buf != idleBufSize || bufp != nil {
		t.Errorf("idle connection holds a %d byte read buffer", buf)
	}
	if out != nil || outp != nil {
		t.Errorf("idle connection holds a %d byte reply buffer", cap(out))
	}
}
