package server

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/internal/cache"
	"petrel/internal/journal"
	"petrel/internal/storage"
)

func newDurableServer(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// peek reads key from the cache: its value and CAS, or "-" when absent.
func peek(srv *Server, key string, now int64) string {
	out := "-"
	srv.cache.Do([]byte(key), now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l == cache.Hit {
			out = fmt.Sprintf("%s@%d", it.Value, it.CAS)
		}
		return it, 0
	})
	return out
}

// TestApplyNeverGoesBack replays records onto keys that already hold a
// version: only a record with a higher sequence may change the key.
func TestApplyNeverGoesBack(t *testing.T) {
	const now = textTestNow
	srv := newDurableServer(t, t.TempDir())
	set := func(key, val string, seq uint64, exp int64) *journal.Record {
		return &journal.Record{Seq: seq, CAS: seq, Type: journal.TypeSet, Key: []byte(key), Value: []byte(val), Exptime: exp}
	}
	del := func(key string, seq uint64) *journal.Record {
		return &journal.Record{Seq: seq, Type: journal.TypeDelete, Key: []byte(key)}
	}
	touch := func(key string, seq uint64, exp int64) *journal.Record {
		return &journal.Record{Seq: seq, Type: journal.TypeTouch, Key: []byte(key), Exptime: exp}
	}
	f := func(rec *journal.Record, wantApplied bool, want string) {
		t.Helper()
		if got := srv.apply(rec, now, nil); got != wantApplied {
			t.Errorf("apply %v %s seq %d: applied = %v, want %v", rec.Type, rec.Key, rec.Seq, got, wantApplied)
		}
		if got := peek(srv, string(rec.Key), now); got != want {
			t.Errorf("after %v %s seq %d: %s, want %s", rec.Type, rec.Key, rec.Seq, got, want)
		}
	}
	f(set("a", "v5", 5, 0), true, "v5@5")
	f(set("a", "v3", 3, 0), false, "v5@5")     // older: ignored
	f(set("a", "v5bis", 5, 0), false, "v5@5")  // the same version twice: ignored
	f(del("a", 4), false, "v5@5")              // an older delete: ignored
	f(touch("a", 4, now-10), false, "v5@5")    // an older touch: ignored
	f(touch("a", 6, now+100), true, "v5@5")    // a newer touch keeps the CAS
	f(del("a", 7), true, "-")                  // a newer delete
	f(set("b", "old", 8, now-1), false, "-")   // expired since: not loaded
	f(set("c", "v9", 9, 0), true, "v9@9")      // then an expired newer set
	f(set("c", "v10", 10, now-1), true, "-")   // removes the older version
	f(set("d", "v11", 11, 0), true, "v11@11")  // a touch into the past
	f(touch("d", 12, now-1), true, "-")        // removes it
	f(touch("nothing", 13, now+5), false, "-") // a touch of nothing
	f(del("nothing", 14), false, "-")          // a delete of nothing
}

// TestApplyYieldsToLiveWrites checks --accept-during-warmup's guard: a key
// a client wrote or deleted during loading, or a flush, is never loaded.
func TestApplyYieldsToLiveWrites(t *testing.T) {
	const now = textTestNow
	srv := newDurableServer(t, t.TempDir())
	w := &warmGuard{keys: map[string]uint64{}}
	w.mark([]byte("live"), 100)
	f := func(key string, seq uint64, want string) {
		t.Helper()
		srv.apply(&journal.Record{Seq: seq, CAS: seq, Type: journal.TypeSet, Key: []byte(key), Value: []byte("old")}, now, w)
		if got := peek(srv, key, now); got != want {
			t.Errorf("%s seq %d: %s, want %s", key, seq, got, want)
		}
	}
	f("live", 5, "-")
	f("other", 6, "old@6")
	w.flushed(50)
	f("other2", 7, "-")
	if !w.flushedAfter(49) || w.flushedAfter(50) {
		t.Error("flushedAfter disagrees with the flush's sequence")
	}
}

// TestDelayedFlushDuringWarmup: with --accept-during-warmup, a client's
// delayed flush_all must not stop the load (the items still to load stay
// visible until its deadline); an immediate one does.
func TestDelayedFlushDuringWarmup(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	w := &warmGuard{keys: map[string]uint64{}}
	srv.dur.warming.Store(w)
	defer srv.dur.warming.Store(nil)
	s := newTextSession(srv, textTestNow)
	f := func(req string, wantStopped bool) {
		t.Helper()
		s.out = s.out[:0]
		if st := s.exec([]byte(req)); st.n != len(req) {
			t.Fatalf("%q: consumed %d of %d", req, st.n, len(req))
		}
		if err := s.awaitDurable(); err != nil {
			t.Fatal(err)
		}
		if string(s.out) != "OK\r\n" {
			t.Fatalf("%q: %q", req, s.out)
		}
		if stopped := w.flushSeq.Load() != 0; stopped != wantStopped {
			t.Fatalf("%q: load stopped %v, want %v", req, stopped, wantStopped)
		}
	}
	f("flush_all 60\r\n", false)
	f("flush_all\r\n", true)
}

// TestReplayAfterRestart writes through sessions (so CAS = sequence),
// closes the server and checks that a new one on the same directory holds
// the same items with the same CAS, including a flush_all that wipes what
// came before it.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	srv := newDurableServer(t, dir)
	s := newTextSession(srv, textTestNow)
	run := func(req string) string {
		t.Helper()
		s.out = s.out[:0]
		st := s.exec([]byte(req))
		if st.n != len(req) {
			t.Fatalf("%q: consumed %d of %d", req, st.n, len(req))
		}
		if err := s.awaitDurable(); err != nil {
			t.Fatal(err)
		}
		return string(s.out)
	}
	run("set gone 0 0 1\r\ng\r\n")
	run("flush_all\r\n")
	s.now++ // flush_all takes the items of its second
	run("set a 1 0 2\r\nv1\r\n")
	run("set b 2 0 2\r\nv2\r\n")
	run("append a 0 0 1\r\n+\r\n")
	run("delete b\r\n")
	want := run("gets a b gone\r\n")
	if want != "VALUE a 1 3 5\r\nv1+\r\nEND\r\n" {
		t.Fatalf("before the restart: %q", want)
	}
	srv.Shutdown()

	srv2 := newDurableServer(t, dir)
	s = newTextSession(srv2, textTestNow+1)
	if got := run("gets a b gone\r\n"); got != want {
		t.Errorf("after the restart: %q, want %q", got, want)
	}
	if got := run("set c 0 0 1\r\nc\r\n") + run("gets c\r\n"); got != "STORED\r\nVALUE c 0 1 7\r\nc\r\nEND\r\n" {
		t.Errorf("a write after the restart continues the sequence: %q", got)
	}
}

// TestRestartStoreAndTail restarts over a data directory whose history is
// split between the store (the first stored records) and the journal tail:
// random sets, overwrites, deletes, touches and expired sets over a few
// thousand keys, with flush_alls placed on either side of the split. Every
// key must come back exactly as a model of the history says (value, CAS,
// exptime), whether the two sources are loaded one after the other or at
// once (recover_parallel.go), and a delayed flush_all must be armed again.
func TestRestartStoreAndTail(t *testing.T) {
	const ops, keys = 8000, 2000
	f := func(name string, stored int, truncate bool, flushAt, delayedAt int) {
		t.Helper()
		now := time.Now().Unix()
		rnd := rand.New(rand.NewPCG(uint64(stored), uint64(flushAt)))
		recs := make([]journal.Record, ops)
		live := map[string]bool{} // the server journals a touch only on a hit
		for i := range recs {
			key := fmt.Appendf(nil, "k%04d", rnd.IntN(keys))
			exp := int64(0)
			switch x := rnd.IntN(10); {
			case x == 0:
				exp = now - 100 // expired since
			case x == 1:
				exp = now + 3600
			}
			switch x := rnd.IntN(20); {
			case i == flushAt:
				recs[i] = journal.Record{Type: journal.TypeFlushAll, At: now - 5}
			case i == delayedAt:
				recs[i] = journal.Record{Type: journal.TypeFlushAll, At: now + 100000, Delayed: true}
			case x < 11:
				// Values of 2-4 KB that do not compress, so that the
				// store is large enough to be loaded in several key
				// ranges (storage.ScanParts).
				val := fmt.Appendf(nil, "v%d-", i)
				for range 2000 + rnd.IntN(2000) {
					val = append(val, 'a'+byte(rnd.IntN(26)))
				}
				recs[i] = journal.Record{Type: journal.TypeSet, Key: key, Value: val, Flags: uint32(i), Exptime: exp}
			case x < 15 || !live[string(key)]:
				recs[i] = journal.Record{Type: journal.TypeDelete, Key: key}
			default:
				if exp == 0 {
					exp = now + 7200
				}
				recs[i] = journal.Record{Type: journal.TypeTouch, Key: key, Exptime: exp}
			}
			switch r := &recs[i]; r.Type {
			case journal.TypeFlushAll:
				if r.At <= now {
					clear(live)
				}
			case journal.TypeDelete:
				delete(live, string(key))
			default:
				live[string(key)] = !expired(r.Exptime, now)
			}
		}
		tmpl := t.TempDir()
		writeDataDir(t, tmpl, recs, stored, 64<<10, truncate)
		want := restartModel(recs, stored, keys, now)

		for _, how := range []struct {
			workers      int
			journalFirst bool
		}{{1, false}, {4, false}, {4, true}} {
			dir := filepath.Join(t.TempDir(), "data")
			if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
				t.Fatalf("copy: %v: %s", err, out)
			}
			cfg := DefaultConfig()
			cfg.MemoryMB = 64 // room for both sources: warmParallel
			cfg.Durable.DataDir = dir
			testWarmWorkers, testWarmJournalFirst = how.workers, how.journalFirst
			srv, err := New(cfg)
			if err == nil && how.workers > 1 {
				if _, _, ok := srv.parallelWarm(srv.dur, srv.dur.back.store); !ok {
					t.Fatalf("%s: the sources do not fit in memory at once; the test does not load them in parallel", name)
				}
			}
			testWarmWorkers, testWarmJournalFirst = 0, false
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			workers := fmt.Sprintf("%d goroutines", how.workers)
			if how.journalFirst {
				workers += ", journal first"
			}
			var bad []string
			var present string
			for k := range keys {
				key := fmt.Sprintf("k%04d", k)
				got, w := peekItem(srv, key, now), want[key]
				if got != w {
					bad = append(bad, fmt.Sprintf("%s = %s, want %s", key, got, w))
				}
				if present == "" && strings.HasSuffix(w, " exp 0") {
					present = key
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s, %s: %d of %d keys wrong after the restart, e.g.:\n%s",
					name, workers, len(bad), keys, strings.Join(bad[:min(len(bad), 5)], "\n"))
			}
			if present == "" {
				t.Fatalf("%s: no key without an exptime survived; the test checks nothing", name)
			}
			// Replayed: the records after the store's and the last due
			// flush_all's (sequence i+1 is recs[i]).
			if got, want := srv.dur.recovery.records.Load(), uint64(ops-max(stored, flushAt)); got != want {
				t.Errorf("%s, %s: %d journal records replayed, want %d", name, workers, got, want)
			}
			// Past a delayed flush's deadline, everything stored before it
			// is gone; with none armed, a key without exptime stays.
			if got := peekItem(srv, present, now+200000); (got == "-") != (delayedAt >= 0) {
				t.Errorf("%s, %s: %s after the delayed flush_all's time: %s", name, workers, present, got)
			}
			srv.Shutdown()
		}
	}
	f("flush_all in the tail", 5000, false, 5500, -1)
	f("flush_all in the store, delayed one after it", 5000, false, 1000, 2000)
	f("journal truncated, delayed flush_all in the tail", 5000, true, -1, 6000)
	f("all in the store", ops, false, 500, -1)
	f("all in the journal", 0, false, 3000, 4000)
}

// restartModel is what a restart over recs (the first stored of them in
// the store) must show at now, by key: as peekItem prints it.
func restartModel(recs []journal.Record, stored, keys int, now int64) map[string]string {
	type item struct {
		val   string
		flags uint32
		cas   uint64
		exp   int64
	}
	m := map[string]*item{}
	for i, r := range recs {
		switch r.Type {
		case journal.TypeFlushAll:
			if r.At <= now {
				clear(m)
			}
		case journal.TypeSet:
			if expired(r.Exptime, now) {
				delete(m, string(r.Key))
			} else {
				m[string(r.Key)] = &item{val: string(r.Value), flags: r.Flags, cas: r.Seq, exp: r.Exptime}
			}
		case journal.TypeDelete:
			delete(m, string(r.Key))
		case journal.TypeTouch:
			it := m[string(r.Key)]
			switch {
			case it == nil:
			case expired(r.Exptime, now):
				delete(m, string(r.Key))
			default:
				it.exp = r.Exptime
				if i < stored {
					it.cas = r.Seq // the store keeps a touch as a new version
				}
			}
		}
	}
	out := map[string]string{}
	for k := range keys {
		key := fmt.Sprintf("k%04d", k)
		out[key] = "-"
		if it := m[key]; it != nil {
			out[key] = fmt.Sprintf("%.12s@%d flags %d exp %d", it.val, it.cas, it.flags, it.exp)
		}
	}
	return out
}

// peekItem is peek with the flags and exptime, and the value cut short.
func peekItem(srv *Server, key string, now int64) string {
	out := "-"
	srv.cache.Do([]byte(key), now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l == cache.Hit {
			out = fmt.Sprintf("%.12s@%d flags %d exp %d", it.Value, it.CAS, it.Flags, it.Exptime)
		}
		return it, 0
	})
	return out
}

// stuckStore is a store whose Close never returns, as Pebble's does not
// when its final flush cannot be written and a write stall holds it. (A
// fake: a real Pebble gets there only after filling its memtables on a
// full disk.)
type stuckStore struct{ storage.Backend }

func (stuckStore) Close() error { select {} }

// TestCloseBackingBounded: shutdown does not wait forever for a storer or a
// store that cannot stop; it gives up after storeStopTimeout and says why.
func TestCloseBackingBounded(t *testing.T) {
	defer func(d time.Duration) { storage.StoreStopTimeout = d }(storage.StoreStopTimeout)
	storage.StoreStopTimeout = 50 * time.Millisecond
	f := func(b *backing, want string) {
		t.Helper()
		var buf bytes.Buffer
		srv := &Server{logger: log.New(&buf, "", 0)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.closeBacking(b)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("closeBacking did not return")
		}
		if !strings.Contains(buf.String(), "STORE STUCK: could not "+want) {
			t.Errorf("log %q does not say it could not %s", buf.String(), want)
		}
	}
	f(&backing{cancel: func() {}, done: make(chan struct{})}, "stop the storer")
	stopped := make(chan struct{})
	close(stopped)
	f(&backing{cancel: func() {}, done: stopped, store: stuckStore{}}, "close the store")
}

// TestDeferredRequestAfterAbortedLoad: with --accept-during-warmup, a
// request on a key not loaded yet waits for the load. When a shutdown
// stops the load, it must fail rather than run on the partly loaded
// memory tier: an add there would store over the acknowledged value still
// in the store, and journal it.
func TestDeferredRequestAfterAbortedLoad(t *testing.T) {
	srv := newDurableServer(t, t.TempDir())
	d := srv.dur
	d.warming.Store(&warmGuard{keys: map[string]uint64{}})
	defer d.warming.Store(nil)
	d.loading = make(chan struct{})
	got := make(chan string)
	// Whether the add gets to the wait before the load ends or after, it
	// finds the key not loaded (warming is set throughout) and waits.
	go func() { got <- runText(t, srv, "add k 0 0 1\r\nx\r\n") }()
	d.loadAborted.Store(true)
	close(d.loading)
	if r := <-got; r != "SERVER_ERROR journal closed: shutting down\r\n" {
		t.Errorf("add waiting on an aborted load: %q", r)
	}
	// So do requests that come after it (the load leaves warming set).
	if r := runText(t, srv, "get k\r\nadd k 0 0 1\r\nx\r\n"); r != "SERVER_ERROR journal closed: shutting down\r\nSERVER_ERROR journal closed: shutting down\r\n" {
		t.Errorf("get and add after an aborted load: %q", r)
	}
	if last := d.j.LastSeq(); last != 0 {
		t.Errorf("the journal ends at %d: the add was journaled", last)
	}
}

// TestStartBesideStorerTruncatedJournal: with `petrel storer` holding the
// store (its lock and Pebble's), a server whose journal no longer starts
// at 1 cannot warm up; it must say so, and how to get out, rather than
// report the records only the store holds as lost.
func TestStartBesideStorerTruncatedJournal(t *testing.T) {
	dir := t.TempDir()
	cfg := smallSegments(dir)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newTextSession(srv, textTestNow)
	v := strings.Repeat("v", 1000)
	for i := range 200 { // several segments, all applied and flushed at the stop
		if out, err := execDurable(t, s, fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(v), v)); err != nil || out != "STORED\r\n" {
			t.Fatalf("set: %q, %v", out, err)
		}
	}
	srv.Shutdown()
	// The storer of another process: its lock, and Pebble open read-write.
	lock, err := storage.LockStorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	p, err := storage.OpenPebble(storage.PebbleDir(dir), storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv, err = New(cfg)
	if err == nil {
		srv.Shutdown()
		t.Fatal("the server started beside the storer with a truncated journal and an unreadable store")
	}
	if msg := err.Error(); !strings.Contains(msg, "stop the storer") || strings.Contains(msg, "are lost") {
		t.Errorf("start refused with %q; want the way out, and no word of a loss", msg)
	}
}

// TestStartRefusesUnfinishedRestore: a data directory a snapshot restore
// left unfinished (its marker still there) is refused, naming the way out,
// rather than served with whatever part of the copy it holds.
func TestStartRefusesUnfinishedRestore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "restore.incomplete"), []byte("snapshot: /snaps/one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	srv, err := New(cfg)
	if err == nil {
		srv.Shutdown()
		t.Fatal("the server started on an unfinished restore")
	}
	if !errors.Is(err, storage.ErrRestoreIncomplete) || !strings.Contains(err.Error(), "/snaps/one") {
		t.Errorf("start refused with %v; want ErrRestoreIncomplete naming the snapshot", err)
	}
}

// smallSegments is the config of a durable server on dir whose journal
// rolls (and so can be truncated) every 64 KiB.
func smallSegments(dir string) Config {
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	cfg.Durable.JournalSegmentSize = 64 << 10
	return cfg
}
