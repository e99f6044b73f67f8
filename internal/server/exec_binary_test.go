package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

const binTestEpoch = 1_700_000_000

// binHarness plays the connection layer for execBinary: it keeps unread
// bytes across writes, swallows what a step asks, and stops at a close.
type binHarness struct {
	t       testing.TB
	srv     *Server
	s       *session
	pending []byte
	swallow int
	closed  bool
}

func newBinHarness(t testing.TB, nocas bool) *binHarness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NoCAS = nocas
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	h := &binHarness{t: t, srv: srv}
	h.reconnect(binTestEpoch)
	return h
}

func (h *binHarness) reconnect(now int64) {
	h.s = &session{srv: h.srv, cache: h.srv.cache, stats: h.srv.reg.NewWorker(), now: now}
	h.pending, h.swallow, h.closed = nil, 0, false
}

// feed runs everything executable in the bytes received so far and returns
// the replies.
func (h *binHarness) feed(in []byte) []byte {
	h.s.out = h.s.out[:0]
	h.pending = append(h.pending, in...)
	for !h.closed {
		if h.swallow > 0 {
			k := min(h.swallow, len(h.pending))
			h.pending, h.swallow = h.pending[k:], h.swallow-k
			if h.swallow > 0 {
				break
			}
		}
		if len(h.pending) == 0 {
			break
		}
		st := h.s.execBinary(h.pending)
		if st.n == 0 {
			if st.need != 0 && st.need <= len(h.pending) {
				h.t.Fatalf("step needs %d bytes but %d are there", st.need, len(h.pending))
			}
			break
		}
		if st.n > len(h.pending) {
			h.t.Fatalf("step consumed %d of %d bytes", st.n, len(h.pending))
		}
		h.pending, h.swallow, h.closed = h.pending[st.n:], st.swallow, st.close
	}
	return append([]byte(nil), h.s.out...)
}

// runScript plays a script and returns each batch's output.
func runScript(t *testing.T, sc *script, byteAtATime bool) [][]byte {
	h := newBinHarness(t, sc.nocas)
	var outs [][]byte
	for _, b := range sc.batches {
		now := h.s.now + b.advance
		if b.reconnect {
			h.reconnect(now)
		}
		h.s.now = now
		var out []byte
		if byteAtATime {
			for i := range b.in {
				out = append(out, h.feed(b.in[i:i+1])...)
			}
		} else {
			out = h.feed(b.in)
		}
		outs = append(outs, out)
		if err := b.match(out, h.closed); err != nil {
			t.Errorf("%s: %v", sc.name, err)
		}
	}
	return outs
}

func loadScripts(t *testing.T) []*script {
	paths, err := filepath.Glob("testdata/binary/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts under testdata/binary (%v)", err)
	}
	var scs []*script
	for _, p := range paths {
		sc, err := loadScript(p)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	return scs
}

func TestBinaryScripts(t *testing.T) {
	for _, sc := range loadScripts(t) {
		t.Run(filepath.Base(sc.name), func(t *testing.T) {
			whole := runScript(t, sc, false)
			// Fed one byte at a time, every request arrives in pieces;
			// the replies must not change.
			single := runScript(t, sc, true)
			for i, b := range sc.batches {
				if b.hasStats() {
					continue // uptime, rusage… move between the runs
				}
				if !bytes.Equal(whole[i], single[i]) {
					t.Errorf("batch at line %d: byte-at-a-time replies differ:\n%x\n%x", sc.batches[i].line, whole[i], single[i])
				}
			}
		})
	}
}

// sentinel is a No-op appended to every batch sent to memcached, so that
// its reply marks the end of the batch's replies.
var sentinel = protocol.AppendBinRequest(nil, &protocol.BinRequest{BinHeader: protocol.BinHeader{
	Magic: protocol.BinReqMagic, Opcode: protocol.BinNoop, Opaque: 0x5e5e5e5e}})

var sentinelReply = protocol.AppendBinResponse(nil, protocol.BinNoop, 0, 0x5e5e5e5e, 0, nil, nil, nil)

// startMemcached runs the real memcached on a free loopback port.
func startMemcached(t *testing.T, args ...string) string {
	path, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed")
	}
	for range 20 {
		port := 20000 + rand.IntN(20000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		// Another engineer's server may hold the port; connecting to it
		// would compare against the wrong process.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		a := append([]string{"-l", "127.0.0.1", "-U", "0", "-p", strconv.Itoa(port)}, args...)
		if os.Geteuid() == 0 {
			a = append(a, "-u", "nobody")
		}
		cmd := exec.Command(path, a...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start memcached: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		for range 100 {
			select {
			case <-exited:
			default:
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Cleanup(func() { cmd.Process.Kill(); <-exited })
					return addr
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		cmd.Process.Kill()
		<-exited
	}
	t.Fatal("memcached did not start")
	return ""
}

// exchange writes in and reads until the sentinel's reply, EOF, or five
// quiet seconds (memcached may be swallowing the sentinel).
func exchange(t *testing.T, c net.Conn, in []byte) (out []byte, closed bool) {
	if _, err := c.Write(in); err != nil {
		return nil, true
	}
	buf := make([]byte, 1<<16)
	for !bytes.HasSuffix(out, sentinelReply) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			var ne net.Error
			if ok := asNetErr(err, &ne); ok && ne.Timeout() {
				return out, false
			}
			return out, true
		}
	}
	return out, false
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// masked renders replies with what legitimately differs hidden: CAS
// values (their sequence differs; zero versus nonzero must agree) and the
// version string.
func masked(out []byte) []string {
	ps, rest := splitReplies(out)
	var r []string
	for _, p := range ps {
		if p.h.CAS != 0 {
			p.h.CAS = 1
		}
		if p.h.Opcode == protocol.BinVersion && p.h.VBucket == 0 {
			p.value = []byte("VERSION")
		}
		r = append(r, p.String())
	}
	if len(rest) > 0 {
		r = append(r, fmt.Sprintf("rest %x", rest))
	}
	return r
}

// TestBinaryAgainstMemcached replays every comparable script against the
// real memcached 1.6.18 and requires the same replies, byte for byte but
// for the masked fields.
func TestBinaryAgainstMemcached(t *testing.T) {
	if testing.Short() {
		t.Skip("starts memcached")
	}
	for _, sc := range loadScripts(t) {
		if sc.nocompare {
			continue
		}
		t.Run(filepath.Base(sc.name), func(t *testing.T) {
			var args []string
			if sc.nocas {
				args = append(args, "-C")
			}
			addr := startMemcached(t, args...)
			h := newBinHarness(t, sc.nocas)
			h.s.now = time.Now().Unix()
			var c net.Conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for _, b := range sc.batches {
				if c == nil || b.reconnect {
					if c != nil {
						c.Close()
					}
					var err error
					if c, err = net.Dial("tcp", addr); err != nil {
						t.Fatalf("dial memcached: %v", err)
					}
					if b.reconnect {
						h.reconnect(time.Now().Unix())
					}
				}
				in := append(append([]byte(nil), b.in...), sentinel...)
				theirs, theirClose := exchange(t, c, in)
				ours := h.feed(in)
				m, o := masked(theirs), masked(ours)
				if fmt.Sprint(m) != fmt.Sprint(o) || theirClose != h.closed {
					t.Errorf("batch at line %d differs from memcached:\nmemcached (closed=%v):\n  %q\npetrel (closed=%v):\n  %q",
						b.line, theirClose, m, h.closed, o)
				}
			}
		})
	}
}

// binPkt builds a request packet for the tests below.
func binPkt(op uint8, key, extras, value []byte, cas uint64) []byte {
	return protocol.AppendBinRequest(nil, &protocol.BinRequest{
		BinHeader: protocol.BinHeader{Magic: protocol.BinReqMagic, Opcode: op, Opaque: 1, CAS: cas},
		Extras:    extras, Key: key, Value: value,
	})
}

func TestBinaryCounters(t *testing.T) {
	h := newBinHarness(t, false)
	setExt := make([]byte, 8)
	incrExt := func(exp uint32) []byte {
		e := binary.BigEndian.AppendUint64(nil, 1)
		e = binary.BigEndian.AppendUint64(e, 5)
		return binary.BigEndian.AppendUint32(e, exp)
	}
	touchExt := make([]byte, 4)
	f := func(pkt []byte, c stats.Counter, want uint64) {
		t.Helper()
		before := h.s.stats.Load(c)
		h.feed(pkt)
		if got := h.s.stats.Load(c) - before; got != want {
			t.Errorf("%s: counted %d, want %d", c.Name(), got, want)
		}
	}
	f(binPkt(protocol.BinSet, []byte("a"), setExt, []byte("1"), 0), stats.CmdSet, 1)
	f(binPkt(protocol.BinGet, []byte("a"), nil, nil, 0), stats.GetHits, 1)
	f(binPkt(protocol.BinGetQ, []byte("b"), nil, nil, 0), stats.GetMisses, 1)
	f(binPkt(protocol.BinGetQ, []byte("b"), nil, nil, 0), stats.CmdGet, 1)
	f(binPkt(protocol.BinGAT, []byte("a"), touchExt, nil, 0), stats.TouchHits, 1)
	f(binPkt(protocol.BinGAT, []byte("a"), touchExt, nil, 0), stats.CmdGet, 0)
	f(binPkt(protocol.BinTouch, []byte("b"), touchExt, nil, 0), stats.TouchMisses, 1)
	f(binPkt(protocol.BinTouch, []byte("b"), touchExt, nil, 0), stats.CmdTouch, 1)
	f(binPkt(protocol.BinIncrement, []byte("a"), incrExt(0), nil, 0), stats.IncrHits, 1)
	f(binPkt(protocol.BinIncrement, []byte("c"), incrExt(0), nil, 0), stats.IncrMisses, 0)
	f(binPkt(protocol.BinDecrement, []byte("d"), incrExt(0xffffffff), nil, 0), stats.DecrMisses, 1)
	f(binPkt(protocol.BinDecrement, []byte("c"), incrExt(0), nil, 0), stats.DecrHits, 1)
	f(binPkt(protocol.BinSet, []byte("a"), setExt, []byte("1"), 99), stats.CasBadval, 1)
	f(binPkt(protocol.BinSet, []byte("z"), setExt, []byte("1"), 99), stats.CasMisses, 1)
	f(binPkt(protocol.BinDelete, []byte("a"), nil, nil, 0), stats.DeleteHits, 1)
	f(binPkt(protocol.BinDelete, []byte("a"), nil, nil, 0), stats.DeleteMisses, 1)
	f(binPkt(protocol.BinSet, []byte("a"), setExt, make([]byte, 2<<20), 0), stats.StoreTooLarge, 1)
	f(binPkt(protocol.BinFlush, nil, nil, nil, 0), stats.CmdFlush, 1)
	f(binPkt(protocol.BinGet, nil, nil, nil, 0), stats.ProtocolErrors, 1)
}

// TestBinaryAllocs checks that the executor adds no allocation of its own
// to what the cache engine does for the same operation.
func TestBinaryAllocs(t *testing.T) {
	h := newBinHarness(t, false)
	set := binPkt(protocol.BinSetQ, []byte("key"), make([]byte, 8), []byte("value"), 0)
	get := binPkt(protocol.BinGet, []byte("key"), nil, nil, 0)
	h.s.out = make([]byte, 0, 4096)
	h.s.scratch = make([]byte, 0, 4096)
	run := func(p []byte) {
		h.s.out = h.s.out[:0]
		if st := h.s.execBinary(p); st.n != len(p) {
			t.Fatalf("step %+v for a %d-byte packet", st, len(p))
		}
	}
	run(set)
	f := func(name string, p []byte, engine func()) {
		t.Helper()
		base := testing.AllocsPerRun(100, engine)
		got := testing.AllocsPerRun(100, func() { run(p) })
		t.Logf("%s: %.1f allocations per request (engine alone: %.1f)", name, got, base)
		if got > base {
			t.Errorf("%s: %.1f allocations per request, the engine alone makes %.1f", name, got, base)
		}
	}
	key, value := []byte("key"), []byte("value")
	f("set", set, func() {
		h.s.cache.Do(key, h.s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			return cache.Item{Key: key, Value: value}, cache.OpPut
		})
	})
	bump := func() {
		h.s.cache.Do(key, h.s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			return it, cache.OpBump
		})
	}
	f("get", get, bump)
	f("gat", binPkt(protocol.BinGAT, key, make([]byte, 4), nil, 0), bump)
	nkey := []byte("n")
	incr := binPkt(protocol.BinIncrementQ, nkey, make([]byte, 20), nil, 0)
	run(incr)
	f("incr", incr, func() {
		h.s.cache.Do(nkey, h.s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			return cache.Item{Key: it.Key, Value: value[:1]}, cache.OpPut
		})
	})
}

// FuzzExecBinary feeds arbitrary bytes to the executor: it must not panic,
// must never consume more than it was given, and must keep its framing.
func FuzzExecBinary(f *testing.F) {
	for _, p := range [][]byte{
		binPkt(protocol.BinSet, []byte("k"), make([]byte, 8), []byte("v"), 0),
		binPkt(protocol.BinGetK, []byte("k"), nil, nil, 0),
		binPkt(protocol.BinIncrement, []byte("k"), make([]byte, 20), nil, 0),
		binPkt(protocol.BinAppend, []byte("k"), nil, []byte("v"), 0),
		binPkt(protocol.BinStat, []byte("settings"), nil, nil, 0),
		binPkt(protocol.BinGATK, []byte("k"), make([]byte, 4), nil, 0),
		binPkt(protocol.BinFlush, nil, make([]byte, 4), nil, 0),
		binPkt(0x50, []byte("k"), []byte("e"), []byte("v"), 0),
	} {
		f.Add(p)
	}
	h := newBinHarness(f, false)
	f.Fuzz(func(t *testing.T, in []byte) {
		h.t = t
		h.reconnect(binTestEpoch)
		in = append([]byte{protocol.BinReqMagic}, in...)
		out := h.feed(in)
		if _, rest := splitReplies(out); len(rest) > 0 {
			t.Fatalf("replies do not frame: %x", rest)
		}
	})
}

// TestBinaryOutOfMemory fills a cache that may not evict (-M) until a Set
// is refused: memcached's ENOMEM reply, and the old value is gone.
func TestBinaryOutOfMemory(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MemoryMB, cfg.NoEvict = 2, true
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	h := &binHarness{t: t, srv: srv}
	h.reconnect(binTestEpoch)
	value := make([]byte, 100<<10)
	var last []binPacket
	i := 0
	for ; i < 1000; i++ {
		key := []byte("k" + strconv.Itoa(i))
		last, _ = splitReplies(h.feed(binPkt(protocol.BinSet, key, make([]byte, 8), value, 0)))
		if len(last) != 1 {
			t.Fatalf("set %d: %d replies", i, len(last))
		}
		if last[0].h.VBucket != protocol.BinStatusOK {
			break
		}
	}
	if i == 1000 {
		t.Fatal("a 2 MB cache that may not evict took 100 MB")
	}
	if p := last[0]; p.h.VBucket != protocol.BinStatusNoMemory || string(p.value) != "Out of memory allocating item" {
		t.Fatalf("refused set answered %v", p)
	}
	if h.s.stats.Load(stats.StoreNoMemory) != 1 {
		t.Errorf("store_no_memory = %d, want 1", h.s.stats.Load(stats.StoreNoMemory))
	}
	// Overwriting an old key with a value that does not fit deletes it.
	h.feed(binPkt(protocol.BinSet, []byte("k0"), make([]byte, 8), make([]byte, 900<<10), 0))
	ps, _ := splitReplies(h.feed(binPkt(protocol.BinGet, []byte("k0"), nil, nil, 0)))
	if len(ps) != 1 || ps[0].h.VBucket != protocol.BinStatusNotFound {
		t.Errorf("k0 after a refused overwrite: %v", ps)
	}
}
