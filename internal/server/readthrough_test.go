package server

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"petrel/internal/storage"
)

// blockingBackend answers Get with item, once release is closed, after
// telling started; only Get is used by read-through.
type blockingBackend struct {
	storage.Backend
	item    storage.Item
	started chan struct{}
	release chan struct{}
	reads   atomic.Int32
}

func (b *blockingBackend) Get(ctx context.Context, key []byte, now int64) (storage.Item, bool, error) {
	b.reads.Add(1)
	b.started <- struct{}{}
	<-b.release
	return b.item, true, nil
}

// readThroughServer is a durable server whose read-through reads be.
func readThroughServer(t *testing.T) (*Server, *blockingBackend) {
	t.Helper()
	srv := newDurableServer(t, t.TempDir())
	be := &blockingBackend{item: storage.Item{Key: []byte("k"), Value: []byte("old"), Version: 1},
		started: make(chan struct{}, 4), release: make(chan struct{})}
	srv.dur.rt = newReadThrough(srv, srv.dur, be)
	// The backend's version 1 must be a durable journal sequence, as a
	// real backend's always is: a reply showing it would wait for it.
	if r := runText(t, srv, "set other 0 0 1\r\nx\r\n"); r != "STORED\r\n" {
		t.Fatalf("set: %q", r)
	}
	return srv, be
}

// runText runs one request on a new session and returns its replies.
func runText(t *testing.T, srv *Server, req string) string {
	s := newTextSession(srv, textTestNow)
	for b := []byte(req); len(b) > 0; {
		st := s.exec(b)
		if st.n == 0 {
			t.Errorf("%q: incomplete", req)
			return ""
		}
		b = b[st.n:]
	}
	if err := s.awaitDurable(); err != nil {
		t.Errorf("%q: %v", req, err)
	}
	return string(s.out)
}

// TestReadThroughDiscardsRacingWrite flushes everything while a backend
// read is in flight: what the read returns is older than the flush_all and
// must not be cached, nor served.
func TestReadThroughDiscardsRacingWrite(t *testing.T) {
	srv, be := readThroughServer(t)
	got := make(chan string)
	go func() { got <- runText(t, srv, "get k\r\n") }()
	<-be.started
	if r := runText(t, srv, "flush_all\r\n"); r != "OK\r\n" {
		t.Fatalf("flush_all during the read: %q", r)
	}
	close(be.release)
	if r := <-got; r != "END\r\n" {
		t.Errorf("get racing a flush_all served %q, want a miss", r)
	}
	if n := srv.dur.rt.st.discards.Load(); n != 1 {
		t.Errorf("discards = %d, want 1", n)
	}
	if p := peek(srv, "k", textTestNow); p != "-" {
		t.Errorf("the stale backend value was cached: %s", p)
	}
}

// TestReadThroughDelete: a delete of a key only the backend holds reads it
// through and deletes it (journaling the delete for the backend); left
// alone, the backend would bring the key back on the next miss.
func TestReadThroughDelete(t *testing.T) {
	srv, be := readThroughServer(t)
	close(be.release)
	if r := runText(t, srv, "delete k\r\n"); r != "DELETED\r\n" {
		t.Errorf("delete of a key in the backend only: %q", r)
	}
	<-be.started
	if p := peek(srv, "k", textTestNow); p != "-" {
		t.Errorf("after the delete: %s", p)
	}
	if last := srv.dur.j.LastSeq(); last != 2 {
		t.Errorf("journal ends at %d, want 2: the delete was not journaled", last)
	}
}

// TestReadThroughSingleflight: concurrent misses on one key make one
// backend read, and all are served its value, with the backend's version
// as CAS.
func TestReadThroughSingleflight(t *testing.T) {
	srv, be := readThroughServer(t)
	const n = 4
	var wg sync.WaitGroup
	replies := make([]string, n)
	wg.Add(1)
	go func() { defer wg.Done(); replies[0] = runText(t, srv, "gets k\r\n") }()
	<-be.started
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i] = runText(t, srv, "gets k\r\n") }()
	}
	for srv.dur.rt.st.shared.Load() < n-1 {
		runtime.Gosched() // the others join the read in flight
	}
	close(be.release)
	wg.Wait()
	for i, r := range replies {
		if r != "VALUE k 0 3 1\r\nold\r\nEND\r\n" {
			t.Errorf("request %d: %q", i, r)
		}
	}
	if r := be.reads.Load(); r != 1 {
		t.Errorf("%d backend reads, want 1", r)
	}
}

// downBackend is a backend that does not answer (a stand-in for one that
// is down, which the end-to-end fault tests run for real).
type downBackend struct{ storage.Backend }

func (downBackend) Get(ctx context.Context, key []byte, now int64) (storage.Item, bool, error) {
	return storage.Item{}, false, errors.New("connection refused")
}

// TestReadThroughDeleteBackendDown: a delete that misses in memory while
// the backend cannot be read is journaled all the same, so that whatever
// the backend holds for the key is deleted too, as the NOT_FOUND reply
// implies; a conditional one (md with C) is not.
func TestReadThroughDeleteBackendDown(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	srv.dur.rt = newReadThrough(srv, srv.dur, downBackend{})
	f := func(req, want string, last uint64) {
		t.Helper()
		if r := runText(t, srv, req); r != want {
			t.Errorf("%q: %q, want %q", req, r, want)
		}
		if got := srv.dur.j.LastSeq(); got != last {
			t.Errorf("after %q the journal ends at %d, want %d", req, got, last)
		}
	}
	f("get k\r\n", "END\r\n", 0)
	f("delete k\r\n", "NOT_FOUND\r\n", 1)
	f("md k C99\r\n", "NF\r\n", 1)
	f("md k\r\n", "NF\r\n", 2)
}
