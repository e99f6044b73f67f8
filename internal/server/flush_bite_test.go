package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

func TestFlushCut(t *testing.T) {
	const now = 1000
	imm := func(seq uint64, at int64) journal.FlushMark { return journal.FlushMark{Seq: seq, At: at, Marked: true} }
	del := func(seq uint64, at int64) journal.FlushMark {
		return journal.FlushMark{Seq: seq, At: at, Delayed: true, Marked: true}
	}
	v1 := func(seq uint64, at int64) journal.FlushMark { return journal.FlushMark{Seq: seq, At: at} }
	f := func(name string, marks []journal.FlushMark, cut uint64, pending int64, bite bool) {
		t.Helper()
		c, p, b := flushCut(marks, now)
		if c != cut || p != pending || b != bite {
			t.Errorf("%s: cut %d, pending %d, bite %v; want %d, %d, %v", name, c, p, b, cut, pending, bite)
		}
	}
	f("none", nil, 0, 0, false)
	f("immediate", []journal.FlushMark{imm(3, 900)}, 3, 0, false)
	f("delayed to come", []journal.FlushMark{imm(3, 900), del(5, 1100)}, 3, 1100, false)
	f("delayed due, unbitten", []journal.FlushMark{imm(3, 900), del(5, 950)}, 3, 0, true)
	f("delayed due in its own second", []journal.FlushMark{del(5, now)}, 0, 0, true)
	f("delayed bitten", []journal.FlushMark{del(5, 950), imm(9, 951)}, 9, 0, false)
	f("delayed replaced by a delayed one", []journal.FlushMark{del(5, 950), del(7, 1100)}, 0, 1100, false)
	f("delayed replaced, the new one due", []journal.FlushMark{del(5, 950), del(7, 990)}, 0, 0, true)
	f("delayed replaced by an immediate one", []journal.FlushMark{del(5, 1100), imm(7, 800)}, 7, 0, false)
	f("immediate, the clock stepped back since", []journal.FlushMark{imm(3, 1100)}, 3, 0, false)
	// Version-1 segments do not mark delayed flushes: the old approximation.
	f("version 1, due", []journal.FlushMark{v1(5, 950)}, 5, 0, false)
	f("version 1, to come", []journal.FlushMark{v1(5, 1100)}, 0, 1100, false)
	f("version 1 then version 2", []journal.FlushMark{v1(5, 1100), imm(7, 900)}, 7, 0, false)
}

// keysIn returns which of keys a get on s finds, as "k1 k2".
func keysIn(t *testing.T, s *session, keys string) string {
	t.Helper()
	out, err := execDurable(t, s, "get "+keys+"\r\n")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range strings.Split(out, "\r\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "VALUE" {
			found = append(found, f[1])
		}
	}
	return strings.Join(found, " ")
}

// flushRecords lists the journal's flush_all records from the start.
func flushRecords(t *testing.T, d *durable) []journal.Record {
	t.Helper()
	r, err := d.j.ReadFrom(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []journal.Record
	var rec journal.Record
	for {
		err := r.Next(&rec)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == journal.TypeFlushAll {
			out = append(out, journal.Record{Seq: rec.Seq, Type: rec.Type, At: rec.At, Delayed: rec.Delayed})
		}
	}
}

// TestFlushBiteLive: a delayed flush_all takes, in memory as in memcached,
// everything stored up to its deadline; the first request past it journals
// that as an immediate flush, so that a restart drops the same writes.
// (Before, the writes made between the command and its deadline came back
// after a restart past the deadline.)
func TestFlushBiteLive(t *testing.T) {
	dir := t.TempDir()
	srv := newDurableServer(t, dir)
	// The requests' clock is in the past, so that the restart's real clock
	// is past the deadline.
	t0 := time.Now().Unix() - 100
	s := newTextSession(srv, t0)
	f := func(now int64, req, want string) {
		t.Helper()
		s.now = now
		if out, err := execDurable(t, s, req); err != nil || out != want {
			t.Fatalf("at %d: %q: %q, %v; want %q", now-t0, req, out, err, want)
		}
	}
	const keys = "before during1 during2 during3 after late"
	f(t0, "set before 0 0 1\r\nb\r\n", "STORED\r\n")
	f(t0, "flush_all 3\r\n", "OK\r\n") // due at t0+2: takes that second too
	if due := srv.dur.bite.due.Load(); due != t0+2 {
		t.Fatalf("tracked deadline %d, want %d", due, t0+2)
	}
	f(t0, "set during1 0 0 1\r\nd\r\n", "STORED\r\n")
	f(t0+1, "set during2 0 0 1\r\nd\r\n", "STORED\r\n")
	if got := keysIn(t, s, keys); got != "before during1 during2" {
		t.Fatalf("before the deadline: %q", got)
	}
	f(t0+2, "set during3 0 0 1\r\nd\r\n", "STORED\r\n")
	if got := keysIn(t, s, keys); got != "" {
		t.Fatalf("in the deadline's second: %q", got)
	}
	f(t0+3, "set after 0 0 1\r\na\r\n", "STORED\r\n")
	// A request that read the clock before the deadline and journals
	// after the bite lands above it, in memory as in the journal.
	f(t0+2, "set late 0 0 1\r\nl\r\n", "STORED\r\n")
	other := newTextSession(srv, t0+3)
	if got := keysIn(t, other, keys); got != "after late" {
		t.Fatalf("past the deadline: %q, want after late", got)
	}
	recs := flushRecords(t, srv.dur)
	if len(recs) != 2 || !recs[0].Delayed || recs[0].At != t0+2 || recs[1].Delayed || recs[1].At != t0+3 {
		t.Fatalf("flush records %+v: want the delayed one and its bite", recs)
	}
	if srv.dur.bite.due.Load() != 0 {
		t.Error("the deadline is still tracked after the bite")
	}
	srv.Shutdown()

	srv = newDurableServer(t, dir)
	if got := keysIn(t, newTextSession(srv, t0+3), keys); got != "after late" {
		t.Errorf("after a restart: %q, want after late (as in memory before it)", got)
	}
}

// TestFlushBiteAtRestart: the server stops before a delayed flush_all's
// deadline and starts after it, so nobody bit it. Everything in the
// journal was stored before the deadline: the restart bites, and nothing
// comes back, from the journal or (after the storer applied the bite)
// from the store.
func TestFlushBiteAtRestart(t *testing.T) {
	dir := t.TempDir()
	srv := newDurableServer(t, dir)
	t0 := time.Now().Unix() - 100
	s := newTextSession(srv, t0)
	const keys = "before during after"
	for _, req := range []string{"set before 0 0 1\r\nb\r\n", "flush_all 50\r\n", "set during 0 0 1\r\nd\r\n"} {
		if _, err := execDurable(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	if got := keysIn(t, s, keys); got != "before during" {
		t.Fatalf("before the deadline: %q", got)
	}
	srv.Shutdown()

	srv = newDurableServer(t, dir)
	s = newTextSession(srv, time.Now().Unix())
	if got := keysIn(t, s, keys); got != "" {
		t.Fatalf("after a restart past the deadline: %q, want nothing", got)
	}
	recs := flushRecords(t, srv.dur)
	if len(recs) != 2 || !recs[0].Delayed || recs[1].Delayed {
		t.Fatalf("flush records %+v: want the delayed one and the restart's bite", recs)
	}
	if _, err := execDurable(t, s, "set after 0 0 1\r\na\r\n"); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()

	// Once more: the bite is in the journal and the store now.
	srv = newDurableServer(t, dir)
	if got := keysIn(t, newTextSession(srv, time.Now().Unix()), keys); got != "after" {
		t.Fatalf("after a second restart: %q, want after", got)
	}
	if recs := flushRecords(t, srv.dur); len(recs) > 2 {
		t.Errorf("the second restart bit again: %+v", recs)
	}
}

// TestFlushReplacedAcrossRestart: a delayed flush_all replaced by a later
// one never takes effect, even once its own deadline has passed, and the
// later one is re-armed at a restart and bitten when due. Once with the
// store applying everything (it keeps only the later flush's marker), once
// without it (its storer lock held, as by `petrel storer` in another
// process, so the server warms from the journal alone).
func TestFlushReplacedAcrossRestart(t *testing.T) {
	f := func(name string, withStore bool) {
		t.Helper()
		dir := t.TempDir()
		if !withStore {
			dir, _ = besidePetrelStorer(t)
		}
		srv := newDurableServer(t, dir)
		t0 := time.Now().Unix() - 100
		s := newTextSession(srv, t0)
		later := time.Now().Unix() + 1000
		for _, req := range []string{
			"set a 0 0 1\r\na\r\n",
			"flush_all 10\r\n", // due at t0+9, in the past at the restart
			"set b 0 0 1\r\nb\r\n",
			"flush_all " + strconv.FormatInt(later-t0+1, 10) + "\r\n", // replaces it
			"set c 0 0 1\r\nc\r\n",
		} {
			if _, err := execDurable(t, s, req); err != nil {
				t.Fatal(err)
			}
		}
		if withStore {
			waitCaughtUp(t, srv, srv.dur.back.storer.Load())
		}
		srv.Shutdown()

		srv = newDurableServer(t, dir)
		if due := srv.dur.bite.due.Load(); due != later {
			t.Fatalf("%s: tracked deadline after the restart: %d, want %d", name, due, later)
		}
		s = newTextSession(srv, time.Now().Unix())
		if got := keysIn(t, s, "a b c"); got != "a b c" {
			t.Fatalf("%s: after a restart, the replaced flush_all's deadline passed: %q, want a b c", name, got)
		}
		s.now = later + 1
		if _, err := execDurable(t, s, "set d 0 0 1\r\nd\r\n"); err != nil {
			t.Fatal(err)
		}
		if got := keysIn(t, s, "a b c d"); got != "d" {
			t.Fatalf("%s: past the re-armed deadline: %q, want d", name, got)
		}
		if withStore {
			waitCaughtUp(t, srv, srv.dur.back.storer.Load())
		}
		srv.Shutdown()

		// The bite's time is in the real clock's future, yet as a
		// version-2 immediate flush it cuts.
		srv = newDurableServer(t, dir)
		if got := keysIn(t, newTextSession(srv, time.Now().Unix()), "a b c d"); got != "d" {
			t.Fatalf("%s: after a restart past the bite: %q, want d", name, got)
		}
	}
	f("with the store", true)
	f("journal alone", false)
}

// TestFlushAllClearsDeadline: an immediate flush_all clears a pending
// delayed one (memcached), so nothing bites at its deadline.
func TestFlushAllClearsDeadline(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	s := newTextSession(srv, textTestNow)
	for _, req := range []string{"flush_all 10\r\n", "flush_all\r\n"} {
		if _, err := execDurable(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	if due := srv.dur.bite.due.Load(); due != 0 {
		t.Fatalf("deadline %d still tracked after an immediate flush_all", due)
	}
	s.now += 20
	if _, err := execDurable(t, s, "set k 0 0 1\r\nk\r\n"); err != nil {
		t.Fatal(err)
	}
	if recs := flushRecords(t, srv.dur); len(recs) != 2 {
		t.Fatalf("flush records %+v: want no bite", recs)
	}
}

// TestFlushBiteOnce: requests racing past the deadline bite once, and
// every write they make lands after the bite.
func TestFlushBiteOnce(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	s := newTextSession(srv, textTestNow)
	if _, err := execDurable(t, s, "set old 0 0 1\r\no\r\nflush_all 10\r\n"); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newTextSession(srv, textTestNow+10)
			s.exec([]byte("set k" + strconv.Itoa(i) + " 0 0 1\r\nv\r\n"))
			if err := s.awaitDurable(); err != nil || string(s.out) != "STORED\r\n" {
				errs <- fmt.Errorf("set k%d: %q, %v", i, s.out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if recs := flushRecords(t, srv.dur); len(recs) != 2 {
		t.Fatalf("flush records %+v: want the delayed one and one bite", recs)
	}
	want := "k0 k1 k2 k3 k4 k5 k6 k7"
	if got := keysIn(t, newTextSession(srv, textTestNow+10), "old "+want); got != want {
		t.Fatalf("after the racing writes: %q, want %q", got, want)
	}
}

// faultServer is a durable server over fs that retries a failed journal
// quickly and lets each group wait a little, so that records appended
// together fail together.
func faultServer(t *testing.T, fs *journal.FaultFS, dir string) *Server {
	t.Helper()
	testJournalFS = fs
	t.Cleanup(func() { testJournalFS = nil })
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	cfg.Durable.JournalRetry = 20 * time.Millisecond
	cfg.Durable.JournalMaxDelay = 300 * time.Millisecond
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// timedReq is a request and the clock of the session that runs it.
type timedReq struct {
	now int64
	req string
}

// failThenResume runs reqs in order, each on a session of its own, on a
// failing disk (so that their records, appended within the group delay,
// are lost together), calls read, then heals the disk and waits for the
// server to resume the journal.
func failThenResume(t *testing.T, srv *Server, fs *journal.FaultFS, reqs []timedReq, wantLost int, read func()) {
	t.Helper()
	fs.FailWrites(0, 0, syscall.ENOSPC)
	var ss []*session
	for _, r := range reqs {
		s := newTextSession(srv, r.now)
		for b := []byte(r.req); len(b) > 0; {
			st := s.exec(b)
			b = b[st.n:]
		}
		ss = append(ss, s)
	}
	for _, s := range ss {
		if err := s.awaitDurable(); err == nil {
			t.Fatalf("a write on a failing disk was released: %q", s.out)
		}
	}
	if lost := srv.dur.j.Lost(); len(lost) != wantLost {
		t.Fatalf("%d records lost, want %d: %+v", len(lost), wantLost, lost)
	}
	if read != nil {
		read()
	}
	fs.Heal()
	for deadline := time.Now().Add(30 * time.Second); srv.dur.j.Err() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the journal did not resume after the disk healed")
		}
	}
}

// TestFlushBiteLost: the bite's record is lost with its group (a full
// disk). Memory applied it, so once the journal resumes the first request
// journals a bite again; else the restart would bite itself and drop what
// was written after the resume.
func TestFlushBiteLost(t *testing.T) {
	dir := t.TempDir()
	fs := journal.NewFaultFS(nil)
	srv := faultServer(t, fs, dir)
	t0 := time.Now().Unix() - 100
	s := newTextSession(srv, t0)
	if out, err := execDurable(t, s, "set old 0 0 1\r\no\r\nflush_all 3\r\n"); err != nil || out != "STORED\r\nOK\r\n" {
		t.Fatalf("%q, %v", out, err)
	}
	// lostA before the deadline, then a request past it: the bite, lostB.
	failThenResume(t, srv, fs, []timedReq{{t0 + 1, "set lostA 0 0 1\r\na\r\n"}, {t0 + 3, "set lostB 0 0 1\r\nb\r\n"}}, 3, nil)
	s.now = t0 + 3
	if out, err := execDurable(t, s, "set new 0 0 1\r\nn\r\n"); err != nil || out != "STORED\r\n" {
		t.Fatalf("after the resume: %q, %v", out, err)
	}
	const keys = "old lostA lostB new"
	if got := keysIn(t, s, keys); got != "new" {
		t.Fatalf("after the resume: %q, want new", got)
	}
	srv.Shutdown()
	srv = faultServer(t, fs, dir)
	if got := keysIn(t, newTextSession(srv, t0+3), keys); got != "new" {
		t.Fatalf("after a restart: %q, want new, as before it", got)
	}
}

// TestResumePastDeadline: records lost while a delayed flush came due, and
// a read meanwhile, which makes the memory tier convert the flush at the
// highest CAS it holds, a lost one. The resumed journal hands those
// sequences out again: a write must not then read as flushed.
func TestResumePastDeadline(t *testing.T) {
	dir := t.TempDir()
	fs := journal.NewFaultFS(nil)
	srv := faultServer(t, fs, dir)
	t0 := time.Now().Unix() - 100
	s := newTextSession(srv, t0)
	if out, err := execDurable(t, s, "flush_all 3\r\n"); err != nil || out != "OK\r\n" {
		t.Fatalf("%q, %v", out, err)
	}
	read := func() {
		r := newTextSession(srv, t0+3) // its bite fails; the read goes on
		if out, err := execDurable(t, r, "get lostA\r\n"); err != nil || out != "END\r\n" {
			t.Fatalf("a read on the failed journal: %q, %v", out, err)
		}
	}
	failThenResume(t, srv, fs, []timedReq{{t0 + 1, "set lostA 0 0 1\r\na\r\nset lostB 0 0 1\r\nb\r\nset lostC 0 0 1\r\nc\r\n"}}, 3, read)
	s.now = t0 + 3
	if out, err := execDurable(t, s, "set new 0 0 1\r\nn\r\n"); err != nil || out != "STORED\r\n" {
		t.Fatalf("after the resume: %q, %v", out, err)
	}
	const keys = "lostA lostB lostC new"
	if got := keysIn(t, s, keys); got != "new" {
		t.Fatalf("after the resume: %q, want new", got)
	}
	srv.Shutdown()
	srv = faultServer(t, fs, dir)
	if got := keysIn(t, newTextSession(srv, t0+3), keys); got != "new" {
		t.Fatalf("after a restart: %q, want new, as before it", got)
	}
}

// TestRepairRestartForgetsFlushes: a --repair start over a journal cut
// below what the store holds restarts the journal after the store's
// sequence. A delayed flush_all left in the kept records was bitten before
// the cut, and the store has applied the bite and the writes after it:
// biting it again at the restart flushed those writes.
func TestRepairRestartForgetsFlushes(t *testing.T) {
	dir := t.TempDir()
	srv := newDurableServer(t, dir)
	t0 := time.Now().Unix() - 100
	for _, req := range []string{"set before 0 0 1\r\nb\r\n", "flush_all 50\r\n"} {
		if _, err := execDurable(t, newTextSession(srv, t0), req); err != nil {
			t.Fatal(err)
		}
	}
	// Past the deadline: the first request bites (sequence 3).
	s := newTextSession(srv, time.Now().Unix())
	for _, req := range []string{"set after1 0 0 1\r\n1\r\n", "set after2 0 0 1\r\n2\r\n"} {
		if _, err := execDurable(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	if recs := flushRecords(t, srv.dur); len(recs) != 2 || recs[1].Seq != 3 {
		t.Fatalf("flush records %+v: want the delayed one and its bite at sequence 3", recs)
	}
	// Where record 3 starts: the journal is cut there, as by --repair.
	r, err := srv.dur.j.ReadFrom(0)
	if err != nil {
		t.Fatal(err)
	}
	var rec journal.Record
	for range 2 {
		if err := r.Next(&rec); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := r.(journal.Positioner).Position()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, srv, srv.dur.back.storer.Load())
	srv.Shutdown() // and the storer makes what it applied durable
	seg := filepath.Join(storage.JournalDir(dir), fmt.Sprintf("%020d.journal", pos.Segment))
	if err := os.Truncate(seg, pos.Offset); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	cfg.Durable.Repair = true
	srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if got := keysIn(t, newTextSession(srv, time.Now().Unix()), "before after1 after2"); got != "after1 after2" {
		t.Fatalf("after the --repair restart: %q, want after1 after2", got)
	}
	if recs := flushRecords(t, srv.dur); len(recs) != 0 {
		t.Errorf("the restart journaled flush records %+v", recs)
	}
}

// TestRestartDropsReplacedFlush: the store has applied a delayed flush_all
// that is due by the restart, but not the later flush_all that replaced
// it (the storer was behind: here, held off by its lock, as by `petrel
// storer` that was not running). The store's marker must not hide from the
// warm-up what it covers: the journal's later record replaced it.
func TestRestartDropsReplacedFlush(t *testing.T) {
	dir := t.TempDir()
	srv := newDurableServer(t, dir)
	start := time.Now().Unix()
	s := newTextSession(srv, start)
	for _, req := range []string{"set a 0 0 1\r\na\r\n", "flush_all 5\r\n", "set b 0 0 1\r\nb\r\n"} {
		if _, err := execDurable(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	due := srv.dur.bite.due.Load()
	waitCaughtUp(t, srv, srv.dur.back.storer.Load())
	srv.Shutdown() // the store holds the delayed flush

	lock, err := storage.LockStorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv = newDurableServer(t, dir) // no storer: the replacing record stays in the journal only
	if time.Now().Unix() > due {
		t.Skipf("the machine took %d s to get here: the delayed flush came due before it could be replaced", time.Now().Unix()-start)
	}
	if _, err := execDurable(t, newTextSession(srv, start), "flush_all 1000\r\n"); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	lock.Unlock()

	for time.Now().Unix() <= due { // the store's marker comes due
		time.Sleep(100 * time.Millisecond)
	}
	srv = newDurableServer(t, dir)
	if got := keysIn(t, newTextSession(srv, time.Now().Unix()), "a b"); got != "a b" {
		t.Fatalf("after a restart past the replaced flush_all's time: %q, want a b", got)
	}
	if got := srv.dur.bite.due.Load(); got != start+999 {
		t.Fatalf("tracked deadline %d, want the replacing flush's %d", got, start+999)
	}
}

// TestTruncatedDelayedFlushStays: a delayed flush_all whose journal record
// is gone (truncated once the store held it) is re-armed or bitten from
// the store's pending marker at a restart, like one the journal still
// holds: past its time it drops everything stored before it, and a later
// flush_all does not bring that back by replacing the marker.
func TestTruncatedDelayedFlushStays(t *testing.T) {
	cfg := smallSegments(t.TempDir())
	start := func() *Server {
		t.Helper()
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return srv
	}
	srv := start()
	s := newTextSession(srv, time.Now().Unix())
	for _, req := range []string{"set a 0 0 1\r\na\r\n", "flush_all 2\r\n"} {
		if _, err := execDurable(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	due := srv.dur.bite.due.Load()
	v := strings.Repeat("v", 1000)
	for i := range 200 { // rolls segments, so that the flush's is truncated
		if _, err := execDurable(t, s, fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(v), v)); err != nil {
			t.Fatal(err)
		}
	}
	waitCaughtUp(t, srv, srv.dur.back.storer.Load())
	srv.Shutdown()
	for time.Now().Unix() <= due {
		time.Sleep(100 * time.Millisecond)
	}

	srv = start()
	if fl := srv.dur.j.Recovery().Flushes; len(fl) > 0 && fl[0].Delayed {
		t.Fatalf("the journal still holds the delayed flush %+v: roll more segments", fl)
	}
	s = newTextSession(srv, time.Now().Unix())
	if got := keysIn(t, s, "a k0 k199"); got != "" {
		t.Fatalf("after a restart past the truncated delayed flush: %q, want nothing", got)
	}
	if _, err := execDurable(t, s, "flush_all 1000\r\n"); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, srv, srv.dur.back.storer.Load())
	srv.Shutdown()

	srv = start()
	if got := keysIn(t, newTextSession(srv, time.Now().Unix()), "a k0 k199"); got != "" {
		t.Fatalf("after a later flush_all and a restart: %q came back", got)
	}
}
