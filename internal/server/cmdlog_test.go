package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"petrel/internal/cmdlog"
	"petrel/internal/protocol"
)

// logRun executes every request in input on s with a fresh logger, the way
// the connection loop does, and returns the log's lines without the header
// and without their time field.
func logRun(t *testing.T, s *session, input []byte, o cmdlog.Options) []string {
	t.Helper()
	o.Dest = filepath.Join(t.TempDir(), "cmd.log")
	l, err := cmdlog.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	buf := input
	for len(buf) > 0 {
		mark := len(s.out)
		st := s.exec(buf)
		if st.n == 0 {
			break
		}
		s.logRequest(l, "tcp:192.0.2.1:5000", buf, st, mark)
		buf = buf[min(st.n+st.swallow, len(buf)):]
	}
	s.cmdlogRelease()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return logLines(t, o.Dest)
}

// logLines reads a log file: its header is checked, the time fields cut.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0]+"\n" != cmdlog.Header {
		t.Fatalf("log starts with %q, want the v1 header", lines[0])
	}
	var out []string
	for _, ln := range lines[1:] {
		_, rest, _ := strings.Cut(ln, " ")
		out = append(out, rest)
	}
	return out
}

func binReq(op byte, key, extras, value []byte) []byte {
	r := protocol.BinRequest{BinHeader: protocol.BinHeader{Magic: protocol.BinReqMagic, Opcode: op}, Key: key, Extras: extras, Value: value}
	return protocol.AppendBinRequest(nil, &r)
}

func be32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// TestCmdlogClassify runs requests of each protocol through a real session
// and checks the lines logged for them: the request re-parsed, the reply
// classified, rlen the bytes of reply each line stands for.
func TestCmdlogClassify(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	f := func(input string, want ...string) {
		t.Helper()
		s.out = s.out[:0]
		got := logRun(t, s, []byte(input), cmdlog.Options{})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%q logged:\n%s\nwant:\n%s\n(reply %q)", input, strings.Join(got, "\n"), strings.Join(want, "\n"), s.out)
		}
	}
	const c = "192.0.2.1:5000 "
	// Classic text.
	f("set a 7 60 3\r\nabc\r\n", c+"set a 7 3 60 stored 8")
	f("add a 0 0 1\r\nx\r\n", c+"add a 0 1 0 not_stored 12")
	f("get a b a\r\n", c+"get a 7 3 0 hit 18", c+"get b 0 0 0 miss 0", c+"get a 7 3 0 hit 23")
	f("gets zz\r\n", c+"gets zz 0 0 0 miss 5")
	f("gat 100 a\r\n", c+"gat a 7 3 100 hit 23")
	f("touch a -1\r\n", c+"touch a 0 0 -1 touched 9")
	f("touch a 10\r\n", c+"touch a 0 0 10 not_found 11")
	f("set n 0 0 1\r\n5\r\nincr n 10\r\ndecr nope 1\r\n",
		c+"set n 0 1 0 stored 8", c+"incr n 0 0 0 ok 4", c+"decr nope 0 0 0 not_found 11")
	f("cas n 0 0 1 999\r\n7\r\n", c+"cas n 0 1 0 exists 8")
	f("delete n\r\ndelete n\r\n", c+"delete n 0 0 0 deleted 9", c+"delete n 0 0 0 not_found 11")
	f("set q 0 0 1 noreply\r\nx\r\n", c+"set q 0 1 0 ok 0")
	f("append q 0 0 2\r\nyz\r\n", c+"append q 0 2 0 stored 8")
	f("bogus\r\nget\r\n", c+"other - 0 0 0 error 7", c+"other - 0 0 0 error 7")
	f("set k 0 0 z\r\n", c+"set k 0 0 0 error 38")
	f("get caf\xc3\xa9\r\n", c+"get b64:Y2Fmw6k= 0 0 0 miss 5")
	f("version\r\nflush_all\r\n", c+"other - 0 0 0 ok 29", c+"flush_all - 0 0 0 ok 4")
	// Meta.
	f("ms m 2 T30 F9\r\nhi\r\n", c+"ms m 9 2 30 stored 4")
	f("mg m v f\r\nmg m\r\nmg none v\r\nmg none v q\r\nmn\r\n",
		c+"mg m 9 2 0 hit 13", c+"mg m 0 0 0 hit 4", c+"mg none 0 0 0 miss 4", c+"mg none 0 0 0 miss 0", c+"mn - 0 0 0 ok 4")
	f("ms bWtleQ== 1 b I\r\nx\r\nmg bWtleQ== b v\r\n", c+"ms mkey 0 1 0 stored 4", c+"mg mkey 0 1 0 hit 9")
	f("md m\r\nmd m\r\n", c+"md m 0 0 0 deleted 4", c+"md m 0 0 0 not_found 4")
	f("ms m 1\r\nx\r\nmd m q\r\nmd m q\r\n", c+"ms m 0 1 0 stored 4", c+"md m 0 0 0 deleted 0", c+"md m 0 0 0 not_found 4")
	f("ma cnt N0 J5\r\nma cnt v\r\n", c+"ma cnt 0 0 0 ok 4", c+"ma cnt 0 0 0 ok 9")
	f("ms m 1 MA\r\nx\r\n", c+"ms m 0 1 0 not_stored 4")
	// Binary.
	f(string(binReq(protocol.BinSet, []byte("b"), be32s(3, 500), []byte("val"))), c+"b:set b 3 3 500 stored 24")
	f(string(binReq(protocol.BinGet, []byte("b"), nil, nil)), c+"b:get b 3 3 0 hit 31")
	f(string(binReq(protocol.BinGetQ, []byte("nope"), nil, nil)), c+"b:getq nope 0 0 0 miss 0")
	f(string(binReq(protocol.BinGet, []byte("nope"), nil, nil)), c+"b:get nope 0 0 0 miss 33")
	f(string(binReq(protocol.BinAddQ, []byte("b"), be32s(0, 0), []byte("v"))), c+"b:addq b 0 1 0 exists 44") // memcached's binary add answers EXISTS
	f(string(binReq(protocol.BinDeleteQ, []byte("b"), nil, nil)), c+"b:deleteq b 0 0 0 deleted 0")
	f(string(binReq(protocol.BinTouch, []byte("b"), be32s(9), nil)), c+"b:touch b 0 0 9 not_found 33")
	f(string(binReq(protocol.BinNoop, nil, nil, nil)), c+"b:noop - 0 0 0 ok 24")
	f(string(binReq(0x42, nil, nil, nil)), c+"other - 0 0 0 error 39")
}

// TestCmdlogSampling: with 1 in 10, a connection logs exactly every tenth
// request whatever the random phase it starts at.
func TestCmdlogSampling(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	var in bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&in, "get k%d\r\n", i)
	}
	got := logRun(t, s, in.Bytes(), cmdlog.Options{Sample: 10})
	if len(got) != 100 {
		t.Fatalf("logged %d of 1000 requests at 1 in 10, want 100", len(got))
	}
	var first int
	fmt.Sscanf(strings.Fields(got[0])[2], "k%d", &first)
	for i, ln := range got {
		if want := fmt.Sprintf("get k%d ", first+10*i); !strings.Contains(ln, want) {
			t.Fatalf("line %d is %q, want %q", i, ln, want)
		}
	}
}

// startRealServer serves the real executors on loopback with the admin
// listener on, until the test ends.
func startRealServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.MemoryMB = 16
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(context.Background()); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() { srv.Shutdown(); wg.Wait() })
	return srv
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCmdlogRuntime turns the logger on and off through the admin endpoint
// and the text command, and checks what a real connection's requests
// wrote, line by line.
func TestCmdlogRuntime(t *testing.T) {
	srv := startRealServer(t, DefaultConfig())
	admin := "http://" + srv.AdminAddr().String()
	path := filepath.Join(t.TempDir(), "cmd.log")
	c := dialTCP(t, srv)

	c.send("cmdlog on\r\n")
	c.expect("SERVER_ERROR no command log path configured (--cmdlog)\r\n")
	c.send("cmdlog sideways\r\n")
	c.expect("CLIENT_ERROR usage: cmdlog [on [SAMPLE]|off]\r\n")
	if code, body := post(t, admin+"/cmdlog?enable=1&sample=0&path="+path); code != http.StatusBadRequest {
		t.Errorf("sample=0: status %d %s, want 400", code, body)
	}
	if code, body := post(t, admin+"/cmdlog?enable=1&path="+path); code != http.StatusOK || !strings.Contains(body, `"enabled":true`) {
		t.Fatalf("enable: %d %s", code, body)
	}
	c.send("set k 0 0 2\r\nhi\r\n")
	c.expect("STORED\r\n")
	c.send("get k\r\n")
	c.expect("VALUE k 0 2\r\n")
	c.expect("hi\r\n")
	c.expect("END\r\n")
	c.send("cmdlog off\r\n")
	c.expect("OK\r\n")
	c.send("get k\r\n") // not logged
	for range 3 {
		c.line()
	}
	c.send("cmdlog on 1\r\n") // the path the admin endpoint set
	c.expect("OK\r\n")
	c.send("delete k\r\n")
	c.expect("DELETED\r\n")
	c.send("cmdlog\r\n")
	status := map[string]string{}
	for {
		ln := c.line()
		if ln == "END\r\n" {
			break
		}
		f := strings.Fields(ln)
		status[f[1]] = f[2]
	}
	if status["cmdlog_enabled"] != "1" || status["cmdlog_path"] != path || status["cmdlog_sample"] != "1" {
		t.Errorf("cmdlog status %v", status)
	}
	if code, body := post(t, admin+"/cmdlog?enable=0"); code != http.StatusOK || !strings.Contains(body, `"enabled":false`) {
		t.Fatalf("disable: %d %s", code, body)
	}
	client := c.nc.LocalAddr().String() + " "
	// The second logger rotated the first one's file to .1.
	// `cmdlog off` stops the logger before its own line is written;
	// `cmdlog on` and `cmdlog` are logged as other.
	want1 := []string{client + "set k 0 2 0 stored 8", client + "get k 0 2 0 hit 22"}
	if got := logLines(t, path+".1"); strings.Join(got, "\n") != strings.Join(want1, "\n") {
		t.Errorf("first log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want1, "\n"))
	}
	got2 := logLines(t, path)
	if len(got2) != 3 || got2[0] != client+"other - 0 0 0 ok 4" || got2[1] != client+"delete k 0 0 0 deleted 9" ||
		!strings.HasPrefix(got2[2], client+"other - 0 0 0 ok ") {
		t.Errorf("second log:\n%s", strings.Join(got2, "\n"))
	}
	if st := srv.cmdlogStatus(); st.Lines != 5 || st.Drops != 0 || st.Enabled {
		t.Errorf("status after both loggers: %+v, want 5 lines, 0 drops, off", st)
	}
}

// TestCmdlogStartup: --cmdlog at start logs from the first request, and
// the log is complete once the server has shut down.
func TestCmdlogStartup(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cmdlog.Path = filepath.Join(t.TempDir(), "cmd.log")
	cfg.Cmdlog.HashKeys = true
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminAddr = ""
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(context.Background()); close(done) }()
	c := dialTCP(t, srv)
	c.send("get secret\r\n")
	c.expect("END\r\n")
	srv.Shutdown()
	<-done
	got := logLines(t, cfg.Cmdlog.Path)
	want := fmt.Sprintf("%s get h:%016x 0 0 0 miss 5", c.nc.LocalAddr(), cmdlog.HashKey([]byte("secret")))
	if len(got) != 1 || got[0] != want {
		t.Errorf("log %q, want [%q]", got, want)
	}
}

func TestCmdlogConfigErrors(t *testing.T) {
	f := func(mod func(*Config)) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.AdminAddr = ""
		mod(&cfg)
		if srv, err := New(cfg); err == nil {
			srv.Shutdown()
			t.Errorf("New accepted %+v", cfg.Cmdlog)
		}
	}
	f(func(c *Config) { c.Cmdlog.Sample = -1 })
	f(func(c *Config) { c.Cmdlog.Keep = -1 })
	f(func(c *Config) { c.Cmdlog.Path = filepath.Join(os.DevNull, "x", "log") })
}

// TestCmdlogUDPClient: a UDP request's line names its client as
// udp:ip:port, per datagram, on the UDP reader's one ring.
func TestCmdlogUDPClient(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	path := filepath.Join(t.TempDir(), "cmd.log")
	l, err := cmdlog.Open(cmdlog.Options{Dest: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"192.0.2.7:4000", "[2001:db8::1]:53"} {
		req := []byte("get k\r\n")
		s.out = s.out[:0]
		st := s.exec(req)
		s.logUDP(l, netip.MustParseAddrPort(peer), req, st, 0)
	}
	s.cmdlogRelease()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"udp:192.0.2.7:4000 get k 0 0 0 miss 5", "udp:[2001:db8::1]:53 get k 0 0 0 miss 5"}
	if got := logLines(t, path); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log %q, want %q", got, want)
	}
}

// FuzzCmdlogCapture feeds arbitrary requests and replies to the capture
// code: whatever the bytes, it must not panic, and it logs at least one
// record for a request.
func FuzzCmdlogCapture(f *testing.F) {
	f.Add([]byte("get a b\r\n"), []byte("VALUE a 0 99999999999999999999\r\nEND\r\n"))
	f.Add([]byte("mg a v f\r\n"), []byte("VA 18446744073709551615 f1\r\n"))
	f.Add(binReq(protocol.BinGet, []byte("k"), nil, nil), []byte{0x81, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte("ms a 2 b\r\nhi\r\n"), []byte("HD\r\n"))
	l, err := cmdlog.Open(cmdlog.Options{Dest: filepath.Join(f.TempDir(), "log"), RingSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, req, reply []byte) {
		if len(req) == 0 {
			return
		}
		cs := &cmdlogSession{l: l, ring: l.NewRing("c")}
		defer cs.ring.Release()
		cs.capture(req, reply)
		if cs.ring.Records()+cs.ring.Drops() == 0 {
			t.Fatalf("request %q with reply %q made no record", req, reply)
		}
	})
}
