package server

import (
	"fmt"
	"testing"

	"petrel/internal/cache"
	"petrel/internal/journal"
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
