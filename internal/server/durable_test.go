package server

import (
	"context"
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/protocol"
)

// TestJournalFailureAnswers fails the journal's disk and checks that every
// mutation, in every protocol, is refused with a server error and changes
// nothing, while reads of durable data go on.
func TestJournalFailureAnswers(t *testing.T) {
	fs := journal.NewFaultFS(nil)
	testJournalFS = fs
	defer func() { testJournalFS = nil }()
	srv := newDurableServer(t, t.TempDir())
	s := newTextSession(srv, textTestNow)
	run := func(req []byte) (string, error) { return execDurable(t, s, string(req)) }
	if out, err := run([]byte("set a 0 0 1\r\nx\r\nset n 0 0 1\r\n5\r\n")); err != nil || out != "STORED\r\nSTORED\r\n" {
		t.Fatalf("before the fault: %q, %v", out, err)
	}

	fs.FailWrites(0, 0, syscall.ENOSPC)
	// The write that meets the fault is applied in memory but its reply is
	// never released: the connection layer closes the connection.
	if _, err := run([]byte("set b 0 0 1\r\ny\r\n")); err == nil {
		t.Fatal("a write whose group failed was released")
	}
	const serverErr = "SERVER_ERROR journal unavailable: no space left on device\r\n"
	f := func(req, want string) {
		t.Helper()
		out, err := run([]byte(req))
		if err != nil || out != want {
			t.Errorf("%q on a failed journal: %q, %v; want %q", req, out, err, want)
		}
	}
	f("set a 0 0 1\r\nz\r\n", serverErr)
	f("add c 0 0 1\r\nz\r\n", serverErr)
	f("append a 0 0 1\r\nz\r\n", serverErr)
	f("cas a 0 0 1 1\r\nz\r\n", serverErr)
	f("delete a\r\n", serverErr)
	f("incr n 1\r\n", serverErr)
	f("touch a 100\r\n", serverErr)
	f("gat 100 a\r\n", serverErr)
	f("flush_all\r\n", serverErr)
	f("ms a 1 T0\r\nz\r\n", serverErr)
	f("md a\r\n", serverErr)
	f("md a I\r\n", serverErr)
	f("ma n\r\n", serverErr)
	f("mg a T100 v\r\n", serverErr)
	f("mg new N30 v\r\n", serverErr)
	// Reads of durable data and misses go on; nothing above changed them.
	f("get a n missing\r\n", "VALUE a 0 1\r\nx\r\nVALUE n 0 1\r\n5\r\nEND\r\n")
	f("mg a v\r\n", "VA 1\r\nx\r\n")
	f("touch missing 10\r\n", "NOT_FOUND\r\n") // nothing to journal
	// b is in memory but will never be durable: a read of it is not sent.
	if out, err := run([]byte("get b\r\n")); err == nil {
		t.Errorf("a read of a value that failed to become durable was released: %q", out)
	}

	msg := strings.TrimSuffix(strings.TrimPrefix(serverErr, "SERVER_ERROR "), "\r\n")
	bf := func(op byte, key string, extras []byte, value string) {
		t.Helper()
		out, err := run(durableBinReq(op, key, extras, value))
		want := protocol.AppendBinErrorText(nil, op, binStatusInternal, 0, msg)
		if err != nil || out != string(want) {
			t.Errorf("binary op %#x on a failed journal: %q, %v; want %q", op, out, err, want)
		}
	}
	bf(protocol.BinSet, "a", make([]byte, 8), "z")
	bf(protocol.BinDelete, "a", nil, "")
	bf(protocol.BinIncrement, "n", make([]byte, 20), "")
	bf(protocol.BinTouch, "a", make([]byte, 4), "")
	bf(protocol.BinGAT, "a", make([]byte, 4), "")
	bf(protocol.BinFlush, "", nil, "")

	if st := srv.dur.j.Stats(); !st.Failed {
		t.Error("the journal does not report its failure")
	}
}

// execDurable runs the requests in req on s and then, as a connection's
// flush does, waits until their replies may be sent.
func execDurable(t *testing.T, s *session, req string) (string, error) {
	t.Helper()
	s.out = s.out[:0]
	for b := []byte(req); len(b) > 0; {
		st := s.exec(b)
		if st.n == 0 {
			t.Fatalf("%q: incomplete", req)
		}
		b = b[min(st.n+st.swallow, len(b)):]
	}
	err := s.awaitDurable()
	return string(s.out), err
}

func durableBinReq(op byte, key string, extras []byte, value string) []byte {
	if op == protocol.BinTouch || op == protocol.BinGAT {
		binary.BigEndian.PutUint32(extras, 100)
	}
	r := protocol.BinRequest{BinHeader: protocol.BinHeader{Magic: protocol.BinReqMagic, Opcode: op},
		Key: []byte(key), Extras: extras, Value: []byte(value)}
	return protocol.AppendBinRequest(nil, &r)
}

// TestRefusedPutNotReplayed makes the cache refuse a put the journal has
// already taken (an append past the item size limit) and checks that a
// restart from the store does not bring the refused value back (or lose the
// key, as a refused newest version in the store would).
func TestRefusedPutNotReplayed(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.MaxItemSize = 1024
	cfg.Durable.DataDir = dir
	open := func() (*Server, *session) {
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv, newTextSession(srv, textTestNow)
	}
	srv, s := open()
	run := func(req string) string {
		t.Helper()
		out, err := execDurable(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	v := strings.Repeat("v", 900)
	if got := run("set a 0 0 900\r\n" + v + "\r\n"); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	if got := run("append a 0 0 200\r\n" + strings.Repeat("w", 200) + "\r\n"); got != "NOT_STORED\r\n" {
		t.Fatalf("append past the limit: %q", got)
	}
	if got := run("get a\r\n"); got != "VALUE a 0 900\r\n"+v+"\r\nEND\r\n" {
		t.Fatalf("after the refused append: %.40q", got)
	}
	// Let the storer apply everything, so that the restart loads the store
	// (where the refused value would be the newest version of a).
	st := srv.dur.back.storer.Load()
	for st.Lag().AppliedSeq < srv.dur.j.LastSeq() {
		if err := st.WaitApplied(context.Background(), srv.dur.j.LastSeq()); err != nil {
			t.Fatal(err)
		}
	}
	srv.Shutdown()

	srv, s = open()
	defer srv.Shutdown()
	if got := run("get a\r\n"); got != "VALUE a 0 900\r\n"+v+"\r\nEND\r\n" {
		t.Errorf("after a restart the refused append came back: %.60q", got)
	}
}

// TestJournalResume fails the journal's disk, heals it, and checks that the
// server resumes writes by itself (--journal-retry) without ever serving a
// value whose record was lost, even once new records reuse its sequence,
// and that a restart finds exactly the acknowledged writes.
func TestJournalResume(t *testing.T) {
	fs := journal.NewFaultFS(nil)
	testJournalFS = fs
	defer func() { testJournalFS = nil }()
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = t.TempDir()
	cfg.Durable.JournalRetry = 20 * time.Millisecond
	var srv *Server
	var s *session
	open := func() {
		var err error
		if srv, err = New(cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		s = newTextSession(srv, textTestNow)
	}
	run := func(req string) (string, error) { return execDurable(t, s, req) }
	f := func(req, want string) {
		t.Helper()
		if out, err := run(req); err != nil || out != want {
			t.Errorf("%q: %q, %v; want %q", req, out, err, want)
		}
	}
	open()
	f("set a 0 0 1\r\nx\r\n", "STORED\r\n")

	fs.FailWrites(0, 0, syscall.ENOSPC)
	if out, err := run("set a 0 0 1\r\ny\r\nset b 0 0 1\r\nz\r\n"); err == nil {
		t.Fatalf("writes whose group failed were released: %q", out)
	}
	time.Sleep(100 * time.Millisecond) // several retries, each failing
	if srv.dur.j.Err() == nil {
		t.Fatal("the journal resumed on a disk that still fails")
	}
	f("set c 0 0 1\r\nw\r\n", "SERVER_ERROR journal unavailable: no space left on device\r\n")

	fs.Heal()
	deadline := time.Now().Add(10 * time.Second)
	for srv.dur.j.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the journal did not resume after the disk healed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The keys of the lost records were dropped from memory: a's durable x
	// is a miss here (as after an eviction), and y and z are never served.
	f("get a b\r\n", "END\r\n")
	// New records reuse the lost sequences; still nothing lost comes back.
	f("set c 0 0 1\r\n1\r\nset d 0 0 1\r\n2\r\nset e 0 0 1\r\n3\r\n", "STORED\r\nSTORED\r\nSTORED\r\n")
	f("get a b c\r\n", "VALUE c 0 1\r\n1\r\nEND\r\n")

	srv.Shutdown()
	open()
	f("get a b c d e\r\n", "VALUE a 0 1\r\nx\r\nVALUE c 0 1\r\n1\r\nVALUE d 0 1\r\n2\r\nVALUE e 0 1\r\n3\r\nEND\r\n")
}

// TestJournalResumeNotWithExternalStorer: with `petrel storer` applying the
// journal files from another process, a failed journal is never resumed.
func TestJournalResumeNotWithExternalStorer(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	srv.dur.back.external = true
	defer func() { srv.dur.back.external = false }() // Shutdown closes the store it really runs
	if err := srv.resumeJournal(srv.dur); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("resume with an external storer: %v", err)
	}
	if a := srv.dur.failedAdvice(); !strings.Contains(a, "restart") || strings.Contains(a, "retries") {
		t.Errorf("advice with an external storer: %q", a)
	}
}

// TestFlushAllOrderedByJournal runs a set on another connection between a
// flush_all's append and its apply to memory: the set's record follows the
// flush's in the journal, so the set must survive in memory too, as it
// does after a restart. (With the flush applied at the highest CAS in
// memory, the set was dropped until the restart brought it back.)
func TestFlushAllOrderedByJournal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = t.TempDir()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flusher, writer := newTextSession(srv, textTestNow), newTextSession(srv, textTestNow)
	f := func(s *session, req, want string) {
		t.Helper()
		if out, err := execDurable(t, s, req); err != nil || out != want {
			t.Errorf("%q: %q, %v; want %q", req, out, err, want)
		}
	}
	f(writer, "set old 0 0 1\r\no\r\n", "STORED\r\n")
	d := srv.dur
	seq, err := d.j.Append(&journal.Record{Type: journal.TypeFlushAll, At: textTestNow})
	if err != nil {
		t.Fatal(err)
	}
	f(writer, "set new 0 0 1\r\nn\r\n", "STORED\r\n")
	flusher.applyFlush(d, seq, textTestNow)
	if err := flusher.awaitDurable(); err != nil {
		t.Fatal(err)
	}
	want := "VALUE new 0 1\r\nn\r\nEND\r\n"
	f(writer, "get old new\r\n", want)
	srv.Shutdown()
	if srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	f(newTextSession(srv, textTestNow), "get old new\r\n", want)
}
