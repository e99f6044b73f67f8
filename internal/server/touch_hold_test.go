package server

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"petrel/internal/journal"
)

// gateFS is the journal's file layer with a gate on fdatasync: while it is
// shut, nothing appended becomes durable.
type gateFS struct {
	journal.FS
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGateFS() *gateFS {
	g := &gateFS{FS: journal.OSFS{}, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gateFS) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateFS) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *gateFS) wait() {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	<-ch
}

func (g *gateFS) wrap(f journal.File, err error) (journal.File, error) {
	if err != nil {
		return nil, err
	}
	return gateFile{f, g}, nil
}

func (g *gateFS) Create(name string) (journal.File, error) { return g.wrap(g.FS.Create(name)) }
func (g *gateFS) OpenRW(name string) (journal.File, error) { return g.wrap(g.FS.OpenRW(name)) }

type gateFile struct {
	journal.File
	g *gateFS
}

func (f gateFile) Datasync() error {
	f.g.wait()
	return f.File.Datasync()
}

// TestTouchHoldsReaders: a touch keeps the item's CAS, so a reader on
// another connection that is shown the new TTL (mg t, me) must be held
// until the touch is durable, as a reader of a new value is. (Before, its
// reply went out at once: the CAS it depended on was durable.)
func TestTouchHoldsReaders(t *testing.T) {
	gate := newGateFS()
	testJournalFS = gate
	defer func() { testJournalFS = nil }()
	srv := newDurableServer(t, t.TempDir())
	t.Cleanup(gate.release) // before the server's Shutdown, which syncs
	toucher, reader := newTextSession(srv, textTestNow), newTextSession(srv, textTestNow)
	f := func(s *session, req, want string) {
		t.Helper()
		if out, err := execDurable(t, s, req); err != nil || out != want {
			t.Fatalf("%q: %q, %v; want %q", req, out, err, want)
		}
	}
	f(toucher, "set k 0 0 1\r\nv\r\n", "STORED\r\n")
	// A key in another slot, not held by k's touch.
	other := "o"
	for touchSlot([]byte(other)) == touchSlot([]byte("k")) {
		other += "x"
	}
	f(toucher, "set "+other+" 0 0 1\r\nv\r\n", "STORED\r\n")

	gate.shut()
	toucher.out = toucher.out[:0]
	toucher.exec([]byte("touch k 500\r\n"))
	touchSeq := toucher.holdSeq
	if string(toucher.out) != "TOUCHED\r\n" || touchSeq == 0 {
		t.Fatalf("touch: %q, holding %d", toucher.out, touchSeq)
	}
	read := func(req, want string) uint64 {
		t.Helper()
		reader.out = reader.out[:0]
		reader.holdSeq = 0
		reader.exec([]byte(req))
		if !strings.HasPrefix(string(reader.out), want) {
			t.Fatalf("%q: %q, want %q...", req, reader.out, want)
		}
		return reader.holdSeq
	}
	for _, req := range []struct{ req, want string }{
		{"mg k t v\r\n", "VA 1 t500\r\n"},
		{"me k\r\n", "ME k exp=-500 "},   // memcached prints the TTL negated
		{"get k\r\n", "VALUE k 0 1\r\n"}, // same item: held too
	} {
		if durable := srv.dur.j.DurableSeq(); durable >= touchSeq {
			t.Fatalf("the touch (sequence %d) is durable (%d) with the gate shut", touchSeq, durable)
		}
		if held := read(req.req, req.want); held < touchSeq {
			t.Errorf("%q shows the touched item, not durable yet, but waits only for sequence %d, not the touch's %d", req.req, held, touchSeq)
		}
	}
	if held := read("mg "+other+" v\r\n", "VA 1\r\n"); held != 0 {
		t.Errorf("a key in another slot waits for sequence %d", held)
	}
	gate.release()
	for _, s := range []*session{toucher, reader} {
		if err := s.awaitDurable(); err != nil {
			t.Fatal(err)
		}
	}
	if held := read("mg k t v\r\n", "VA 1 t500\r\n"); held != 0 {
		t.Errorf("once the touch is durable, a reader still waits for sequence %d", held)
	}
}

// TestTouchLostThenResumed: a touch whose record is lost must not leave
// readers of its slot waiting for its sequence, which the resumed journal
// may not hand out again for a long while.
func TestTouchLostThenResumed(t *testing.T) {
	fs := journal.NewFaultFS(nil)
	srv := faultServer(t, fs, t.TempDir())
	other := "o0"
	for i := 1; touchSlot([]byte(other)) != touchSlot([]byte("k")); i++ {
		other = "o" + strconv.Itoa(i)
	}
	s := newTextSession(srv, textTestNow)
	if out, err := execDurable(t, s, "set k 0 0 1\r\nv\r\nset "+other+" 0 0 1\r\nv\r\n"); err != nil || out != "STORED\r\nSTORED\r\n" {
		t.Fatalf("%q, %v", out, err)
	}
	failThenResume(t, srv, fs, []timedReq{{textTestNow, "touch k 500\r\n"}}, 1, nil)
	s.out, s.holdSeq = s.out[:0], 0
	s.exec([]byte("get " + other + "\r\n"))
	if last := srv.dur.j.LastSeq(); s.holdSeq > last {
		t.Fatalf("a reader of the lost touch's slot waits for sequence %d; the journal ends at %d", s.holdSeq, last)
	}
	if err := s.awaitDurable(); err != nil || !strings.HasPrefix(string(s.out), "VALUE "+other) {
		t.Fatalf("%q, %v", s.out, err)
	}
}
