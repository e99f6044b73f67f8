// Package backendtest is the conformance suite every storage backend
// (Pebble, PostgreSQL, DynamoDB) passes, plus helpers that start real
// database servers for tests.
//
// The properties come from the storage.Backend contract, which exists to
// fix what a 2013 memcached+DynamoDB prototype got wrong: a replayed or
// delayed write must never take a key back in time (per-key versions equal
// to the journal sequence), deletes leave tombstones so an older set cannot
// resurrect a key, and the applied sequence survives a reopen so the storer
// knows where to resume.
package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// Opener opens the backend under test. The first call for a given t must
// return an empty store; later calls with the same t (after the suite has
// closed the previous one) must reopen that same store. Name and Dir give a
// per-test table name or directory that is stable across calls.
type Opener func(t *testing.T) storage.Backend

// Run runs the conformance suite against open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"ApplyGet", testApplyGet},
		{"Idempotent", testIdempotent},
		{"StaleWrites", testStale},
		{"Tombstones", testTombstones},
		{"FoldWithinBatch", testFold},
		{"Touch", testTouch},
		{"Expiry", testExpiry},
		{"FlushAll", testFlushAll},
		{"DelayedFlushAll", testDelayedFlush},
		{"DelayedFlushReplaced", testDelayedFlushReplaced},
		{"DropPendingFlush", testDropPendingFlush},
		{"FlushesOutOfOrder", testFlushesOutOfOrder},
		{"PendingFlushConcurrent", testPendingFlushConcurrent},
		{"Reopen", testReopen},
		{"Scan", testScan},
		{"BinaryKeysAndValues", testBinary},
		{"ConcurrentWriters", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// Helpers to build records.

// Set is a set record.
func Set(seq uint64, key, value string, flags uint32, exptime int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeSet, Key: []byte(key), Value: []byte(value), Flags: flags, Exptime: exptime}
}

// Delete is a delete record.
func Delete(seq uint64, key string) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeDelete, Key: []byte(key)}
}

// Touch is a touch record.
func Touch(seq uint64, key string, exptime int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeTouch, Key: []byte(key), Exptime: exptime}
}

// Flush is a flush_all record taking effect at unix second at.
func Flush(seq uint64, at int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeFlushAll, At: at}
}

// DelayedFlush is a flush_all N record (Record.Delayed) due at unix second at.
func DelayedFlush(seq uint64, at int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeFlushAll, At: at, Delayed: true}
}

func now() int64 { return time.Now().Unix() }

// visibleAt reports whether key is live in b at unix second when.
func visibleAt(t *testing.T, b storage.Backend, key string, when int64) bool {
	t.Helper()
	_, ok, err := b.Get(context.Background(), []byte(key), when)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return ok
}

func openT(t *testing.T, open Opener) storage.Backend {
	t.Helper()
	b := open(t)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { b.Close() }) })
	return b
}

func apply(t *testing.T, b storage.Backend, recs ...journal.Record) {
	t.Helper()
	if err := b.Apply(context.Background(), recs); err != nil {
		t.Fatalf("Apply(%d records, seq %d..): %v", len(recs), recs[0].Seq, err)
	}
}

// Want checks key's live value in b: value (with flags and version) or,
// with version 0, absence.
func Want(t testing.TB, b storage.Backend, key, value string, flags uint32, version uint64) {
	t.Helper()
	it, ok, err := b.Get(context.Background(), []byte(key), now())
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if version == 0 {
		if ok {
			t.Fatalf("Get(%q) = %q v%d, want absent", key, it.Value, it.Version)
		}
		return
	}
	if !ok {
		t.Fatalf("Get(%q) absent, want %q v%d", key, value, version)
	}
	if string(it.Key) != key || string(it.Value) != value || it.Flags != flags || it.Version != version {
		t.Fatalf("Get(%q) = key %q value %q flags %d v%d, want %q flags %d v%d",
			key, it.Key, it.Value, it.Flags, it.Version, value, flags, version)
	}
}

func wantApplied(t *testing.T, b storage.Backend, want uint64) {
	t.Helper()
	got, err := b.AppliedSeq(context.Background())
	if err != nil {
		t.Fatalf("AppliedSeq: %v", err)
	}
	if got != want {
		t.Fatalf("AppliedSeq = %d, want %d", got, want)
	}
}

func testApplyGet(t *testing.T, open Opener) {
	b := openT(t, open)
	wantApplied(t, b, 0)
	Want(t, b, "a", "", 0, 0)
	exp := now() + 3600
	apply(t, b, Set(1, "a", "alpha", 7, 0), Set(2, "b", "", 0, exp))
	Want(t, b, "a", "alpha", 7, 1)
	Want(t, b, "b", "", 0, 2)
	it, _, err := b.Get(context.Background(), []byte("b"), now())
	if err != nil || it.Exptime != exp {
		t.Fatalf("Get(b) exptime = %d, %v; want %d", it.Exptime, err, exp)
	}
	wantApplied(t, b, 2)
	// An empty batch is harmless.
	if err := b.Apply(context.Background(), nil); err != nil {
		t.Fatalf("Apply(nil): %v", err)
	}
	wantApplied(t, b, 2)
}

func testIdempotent(t *testing.T, open Opener) {
	b := openT(t, open)
	batch := []journal.Record{Set(1, "a", "1", 0, 0), Set(2, "b", "2", 0, 0), Delete(3, "a"), Set(4, "c", "4", 1, 0)}
	for range 3 {
		apply(t, b, batch...)
		Want(t, b, "a", "", 0, 0)
		Want(t, b, "b", "2", 0, 2)
		Want(t, b, "c", "4", 1, 4)
		wantApplied(t, b, 4)
	}
	// Replaying an older prefix after a newer batch changes nothing.
	apply(t, b, Set(5, "b", "5", 0, 0))
	apply(t, b, batch[:2]...)
	Want(t, b, "b", "5", 0, 5)
	Want(t, b, "a", "", 0, 0)
	wantApplied(t, b, 5)
}

func testStale(t *testing.T, open Opener) {
	b := openT(t, open)
	f := func(rec journal.Record, key, value string, version uint64) {
		t.Helper()
		apply(t, b, rec)
		Want(t, b, key, value, 0, version)
	}
	f(Set(10, "k", "ten", 0, 0), "k", "ten", 10)
	f(Set(5, "k", "five", 0, 0), "k", "ten", 10)   // older: ignored
	f(Set(10, "k", "again", 0, 0), "k", "ten", 10) // equal: ignored
	f(Set(11, "k", "eleven", 0, 0), "k", "eleven", 11)
	f(Delete(9, "k"), "k", "eleven", 11) // stale delete: ignored
	f(Touch(8, "k", 1), "k", "eleven", 11)
	wantApplied(t, b, 11) // the applied sequence does not go back either
}

func testTombstones(t *testing.T, open Opener) {
	b := openT(t, open)
	f := func(rec journal.Record, value string, version uint64) {
		t.Helper()
		apply(t, b, rec)
		Want(t, b, "k", value, 0, version)
	}
	f(Set(1, "k", "one", 0, 0), "one", 1)
	f(Delete(3, "k"), "", 0)
	f(Set(2, "k", "two", 0, 0), "", 0) // older than the tombstone
	f(Delete(3, "k"), "", 0)
	f(Set(4, "k", "four", 0, 0), "four", 4)
	// A delete of a key never stored still blocks older writes.
	apply(t, b, Delete(10, "ghost"))
	apply(t, b, Set(6, "ghost", "boo", 0, 0))
	Want(t, b, "ghost", "", 0, 0)
}

func testFold(t *testing.T, open Opener) {
	b := openT(t, open)
	exp := now() + 3600
	apply(t, b,
		Set(1, "a", "1", 0, 0), Set(2, "a", "2", 0, 0), Delete(3, "a"), Set(4, "a", "4", 4, 0),
		Set(5, "b", "5", 0, 0), Delete(6, "b"),
		Set(7, "c", "7", 0, 0), Touch(8, "c", exp),
		Delete(9, "d"), Touch(10, "d", exp),
	)
	Want(t, b, "a", "4", 4, 4)
	Want(t, b, "b", "", 0, 0)
	Want(t, b, "c", "7", 0, 8)
	Want(t, b, "d", "", 0, 0)
	it, _, _ := b.Get(context.Background(), []byte("c"), now())
	if it.Exptime != exp {
		t.Fatalf("c exptime = %d, want %d", it.Exptime, exp)
	}
	wantApplied(t, b, 10)
}

func testTouch(t *testing.T, open Opener) {
	b := openT(t, open)
	exp := now() + 3600
	apply(t, b, Set(1, "k", "v", 3, 0))
	apply(t, b, Touch(2, "k", exp))
	Want(t, b, "k", "v", 3, 2)
	it, _, _ := b.Get(context.Background(), []byte("k"), now())
	if it.Exptime != exp {
		t.Fatalf("exptime after touch = %d, want %d", it.Exptime, exp)
	}
	// A touch of a missing or deleted key creates nothing.
	apply(t, b, Touch(3, "missing", exp), Delete(4, "k"))
	apply(t, b, Touch(5, "k", exp))
	Want(t, b, "missing", "", 0, 0)
	Want(t, b, "k", "", 0, 0)
	// Touching into the past expires the item.
	apply(t, b, Set(6, "j", "v", 0, 0), Touch(7, "j", now()-10))
	Want(t, b, "j", "", 0, 0)
}

func testExpiry(t *testing.T, open Opener) {
	b := openT(t, open)
	n := now()
	apply(t, b, Set(1, "old", "v", 0, n-1), Set(2, "new", "v", 0, n+3600), Set(3, "never", "v", 0, 0))
	Want(t, b, "old", "", 0, 0)
	Want(t, b, "new", "v", 0, 2)
	Want(t, b, "never", "v", 0, 3)
	// Get honours the now it is given.
	if _, ok, err := b.Get(context.Background(), []byte("new"), n+7200); err != nil || ok {
		t.Fatalf("Get(new, an hour after expiry) = %v, %v; want absent", ok, err)
	}
}

func testFlushAll(t *testing.T, open Opener) {
	b := openT(t, open)
	apply(t, b, Set(1, "a", "1", 0, 0), Delete(2, "d"), Set(3, "b", "3", 0, 0))
	apply(t, b, Set(4, "c", "4", 0, 0), Flush(5, now()), Set(6, "e", "6", 0, 0))
	Want(t, b, "a", "", 0, 0)
	Want(t, b, "b", "", 0, 0)
	Want(t, b, "c", "", 0, 0)
	Want(t, b, "e", "6", 0, 6)
	wantApplied(t, b, 6)
	// Writes from before the flush, replayed, stay flushed.
	apply(t, b, Set(1, "a", "1", 0, 0), Set(4, "c", "4", 0, 0))
	Want(t, b, "a", "", 0, 0)
	Want(t, b, "c", "", 0, 0)
	apply(t, b, Set(7, "a", "7", 0, 0))
	Want(t, b, "a", "7", 0, 7)
	// A flush dated in the past is immediate too.
	apply(t, b, Flush(8, now()-100))
	Want(t, b, "a", "", 0, 0)
	Want(t, b, "e", "", 0, 0)
}

func testDelayedFlush(t *testing.T, open Opener) {
	b := open(t)
	n := now()
	at := n + 3600
	apply(t, b, Set(1, "a", "1", 0, 0), Flush(2, at), Set(3, "b", "3", 0, 0))
	Want(t, b, "a", "1", 0, 1) // not due yet
	Want(t, b, "b", "3", 0, 3)
	get := func(key string, when int64) bool { t.Helper(); return visibleAt(t, b, key, when) }
	if get("a", at) || !get("b", at) {
		t.Fatalf("at the flush time: a present %v (want false), b present %v (want true)", get("a", at), get("b", at))
	}
	var seen []string
	if err := b.Scan(context.Background(), at+1, func(it storage.Item) error {
		seen = append(seen, string(it.Key))
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(seen) != 1 || seen[0] != "b" {
		t.Fatalf("Scan after the delayed flush = %q, want [b]", seen)
	}
	// The pending flush survives a reopen.
	b.Close()
	b = openT(t, open)
	if get("a", at) || !get("a", n) {
		t.Fatalf("after reopen: a must be visible before %d and hidden from it", at)
	}
}

func testReopen(t *testing.T, open Opener) {
	b := open(t)
	apply(t, b, Set(1, "a", "1", 0, 0), Set(2, "b", "2", 0, 0))
	apply(t, b, Delete(3, "a"), Flush(4, now()+3600), Set(5, "c", "5", 0, 0))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = openT(t, open)
	wantApplied(t, b, 5)
	Want(t, b, "a", "", 0, 0)
	Want(t, b, "b", "2", 0, 2)
	Want(t, b, "c", "5", 0, 5)
	// Tombstones survive a reopen.
	apply(t, b, Set(1, "a", "1", 0, 0))
	Want(t, b, "a", "", 0, 0)
	wantApplied(t, b, 5)
}

func testScan(t *testing.T, open Opener) {
	b := openT(t, open)
	n := now()
	var recs []journal.Record
	want := map[string]uint64{}
	for i := range 300 {
		key := fmt.Sprintf("key-%03d", i)
		seq := uint64(i + 1)
		switch i % 5 {
		case 0:
			recs = append(recs, Set(seq, key, "x", 0, 0), Delete(seq+1000, key))
		case 1:
			recs = append(recs, Set(seq, key, "x", 0, n-5)) // expired
		default:
			recs = append(recs, Set(seq, key, "v"+key, uint32(i), 0))
			want[key] = seq
		}
	}
	// Apply in sequence order, in a few batches.
	sortRecs(recs)
	for i := 0; i < len(recs); i += 100 {
		apply(t, b, recs[i:min(i+100, len(recs))]...)
	}
	got := map[string]uint64{}
	err := b.Scan(context.Background(), n, func(it storage.Item) error {
		if _, dup := got[string(it.Key)]; dup {
			return fmt.Errorf("key %q scanned twice", it.Key)
		}
		if string(it.Value) != "v"+string(it.Key) {
			return fmt.Errorf("key %q: value %q", it.Key, it.Value)
		}
		got[string(it.Key)] = it.Version
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Scan returned %d items, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Scan: %q version %d, want %d", k, got[k], v)
		}
	}
	// An error from fn stops the scan and comes back.
	stop := fmt.Errorf("stop")
	calls := 0
	err = b.Scan(context.Background(), n, func(storage.Item) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Scan with failing fn = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func sortRecs(recs []journal.Record) {
	for i := 1; i < len(recs); i++ {
		for j := i; j > 0 && recs[j].Seq < recs[j-1].Seq; j-- {
			recs[j], recs[j-1] = recs[j-1], recs[j]
		}
	}
}

func testBinary(t *testing.T, open Opener) {
	b := openT(t, open)
	keys := []string{"\x00", "\xff\xfe", "a b\r\n", string(bytes.Repeat([]byte("k"), 250))}
	big := string(bytes.Repeat([]byte{0, 1, 2, 0xff}, 300<<10/4)) // 300 KiB, under DynamoDB's limit
	for i, k := range keys {
		apply(t, b, Set(uint64(i+1), k, big[:i*1000], 0xffffffff, 0))
	}
	for i, k := range keys {
		Want(t, b, k, big[:i*1000], 0xffffffff, uint64(i+1))
	}
	apply(t, b, Set(10, "big", big, 0, 0))
	Want(t, b, "big", big, 0, 10)
}

// testConcurrent has several writers apply interleaved, overlapping batches
// of sets and deletes of a few keys, in no particular order, as concurrent
// storers (or a storer racing a replay) would. Whatever the interleaving,
// each key must end with the record of its highest sequence.
func testConcurrent(t *testing.T, open Opener) {
	b := openT(t, open)
	const (
		keys    = 8
		writers = 4
		total   = 2000
		batch   = 25
	)
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]journal.Record, total)
	last := map[string]journal.Record{}
	for i := range recs {
		key := fmt.Sprintf("k%d", rng.IntN(keys))
		seq := uint64(i + 1)
		if rng.IntN(4) == 0 {
			recs[i] = Delete(seq, key)
		} else {
			recs[i] = Set(seq, key, fmt.Sprintf("v%d", seq), uint32(seq), 0)
		}
		last[key] = recs[i]
	}
	// Deal the batches out to writers, each writer applying its batches in
	// shuffled order: every record is applied at least once, some twice.
	var batches [][]journal.Record
	for i := 0; i < total; i += batch {
		batches = append(batches, recs[i:min(i+batch, total)])
	}
	work := make([][][]journal.Record, writers)
	for i, bt := range batches {
		work[i%writers] = append(work[i%writers], bt)
		if rng.IntN(3) == 0 {
			w := rng.IntN(writers)
			work[w] = append(work[w], bt)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range work {
		mine := work[w]
		rand.New(rand.NewPCG(uint64(w), 9)).Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		wg.Go(func() {
			for _, bt := range mine {
				if err := b.Apply(context.Background(), bt); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for key, r := range last {
		if r.Type == journal.TypeDelete {
			Want(t, b, key, "", 0, 0)
		} else {
			Want(t, b, key, string(r.Value), r.Flags, r.Seq)
		}
	}
	wantApplied(t, b, total)
}

// testDelayedFlushReplaced: a later flush_all replaces a pending delayed
// one, and a delayed one applied after its time (a storer behind) is
// still pending, not immediate: the later record the journal holds may
// replace it. Only an immediate flush removes what it covers for good.
func testDelayedFlushReplaced(t *testing.T, open Opener) {
	b := openT(t, open)
	n := now()
	get := func(key string, when int64) bool { t.Helper(); return visibleAt(t, b, key, when) }
	// Due an hour ago when applied: it hides a at once...
	apply(t, b, Set(1, "a", "1", 0, 0), DelayedFlush(2, n-3600), Set(3, "b", "3", 0, 0))
	if get("a", n) || !get("b", n) {
		t.Fatalf("a delayed flush applied after its time: a %v (want hidden), b %v", get("a", n), get("b", n))
	}
	// ...until a later delayed one replaces it, in another batch.
	apply(t, b, Set(4, "c", "4", 0, 0), DelayedFlush(5, n+3600))
	if !get("a", n) || !get("b", n) || !get("c", n) {
		t.Fatalf("after the replacing flush: a %v b %v c %v, want all visible", get("a", n), get("b", n), get("c", n))
	}
	if get("a", n+3600) || get("c", n+3600) {
		t.Fatal("the replacing flush hides nothing at its own time")
	}
	// Replayed, the replaced one stays replaced.
	apply(t, b, DelayedFlush(2, n-3600))
	if !get("a", n) {
		t.Fatal("a replayed replaced delayed flush took effect again")
	}
	b.Close()
	b = openT(t, open)
	if !get("a", n) || get("a", n+3600) {
		t.Fatal("after reopen: a must be visible now and hidden at the replacing flush's time")
	}
	// An immediate flush (the bite) ends it for good.
	apply(t, b, Set(6, "d", "6", 0, 0), Flush(7, n))
	for _, k := range []string{"a", "b", "c", "d"} {
		Want(t, b, k, "", 0, 0)
	}
	apply(t, b, Set(8, "e", "8", 0, 0))
	if !get("e", n+7200) {
		t.Fatal("the immediate flush left the replaced marker behind")
	}
}

// testDropPendingFlush: a backend told that the journal holds the record
// replacing its pending flush (storage.PendingFlusher) stops hiding
// what the marker covers, and the replacing record, applied, leaves only
// itself, also after a reopen.
func testDropPendingFlush(t *testing.T, open Opener) {
	b := openT(t, open)
	dp, ok := b.(storage.PendingFlusher)
	if !ok {
		t.Fatal("not a PendingFlusher")
	}
	n := now()
	get := func(key string, when int64) bool { t.Helper(); return visibleAt(t, b, key, when) }
	apply(t, b, Set(1, "a", "1", 0, 0), DelayedFlush(2, n-3600), Set(3, "b", "3", 0, 0))
	if get("a", n) {
		t.Fatal("a due delayed flush hides nothing")
	}
	wantPending(t, b, 2, n-3600)
	dp.DropPendingFlush()
	wantPending(t, b, 0, 0)
	if !get("a", n) || !get("b", n) {
		t.Fatalf("after DropPendingFlush: a %v, b %v; want both visible", get("a", n), get("b", n))
	}
	apply(t, b, Set(4, "c", "4", 0, 0), DelayedFlush(5, n+3600))
	b.Close()
	b = openT(t, open)
	if !get("a", n) || get("a", n+3600) || get("c", n+3600) {
		t.Fatal("after the replacing flush and a reopen: a must be visible now, a and c hidden at its time")
	}
	wantPending(t, b, 5, n+3600)
	apply(t, b, Flush(6, n))
	wantPending(t, b, 0, 0)
}

// wantPending checks b's pending flush marker (storage.PendingFlusher).
func wantPending(t *testing.T, b storage.Backend, seq uint64, at int64) {
	t.Helper()
	pf, ok := b.(storage.PendingFlusher)
	if !ok {
		t.Fatal("not a PendingFlusher")
	}
	if s, a := pf.PendingFlush(); s != seq || (seq != 0 && a != at) {
		t.Fatalf("pending flush %d at %d, want %d at %d", s, a, seq, at)
	}
}

// testFlushesOutOfOrder: batches of sets, an immediate and a delayed
// flush_all end in the same state in any order (concurrent storers, or a
// replay), also after a reopen. An immediate flush applied after a later
// delayed one still removes what is below it.
func testFlushesOutOfOrder(t *testing.T, open Opener) {
	n := now()
	batches := [][]journal.Record{
		{Set(1, "a", "1", 0, 0)},
		{Flush(15, n-5), Set(16, "z", "16", 0, 0)},
		{Set(17, "y", "17", 0, 0), DelayedFlush(20, n+3600)},
	}
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {2, 1, 0}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			b := openT(t, open)
			for _, i := range order {
				apply(t, b, batches[i]...)
			}
			check := func(when string) {
				t.Helper()
				for _, c := range []struct {
					key      string
					now, end bool // visible now, and at the delayed flush's time
				}{{"a", false, false}, {"z", true, false}, {"y", true, false}} {
					if got, gotEnd := visibleAt(t, b, c.key, n), visibleAt(t, b, c.key, n+3600); got != c.now || gotEnd != c.end {
						t.Fatalf("%s: %s visible %v now and %v at the delayed flush, want %v and %v", when, c.key, got, gotEnd, c.now, c.end)
					}
				}
			}
			check("applied")
			wantPending(t, b, 20, n+3600)
			b.Close()
			b = openT(t, open)
			check("reopened")
			wantPending(t, b, 20, n+3600)
		})
	}
}

// testPendingFlushConcurrent: a delayed flush applied while other writers
// replay an older batch survives a reopen. A batch that saw no pending
// flush, committing after the one that recorded it, wrote over it.
func testPendingFlushConcurrent(t *testing.T, open Opener) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			b := openT(t, open)
			past := now() - 10
			apply(t, b, Set(1, "a", "1", 0, 0), Set(2, "b", "2", 0, 0))
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, 7)
			wg.Go(func() {
				<-start
				time.Sleep(time.Duration(i) * 200 * time.Microsecond)
				errs <- b.Apply(context.Background(), []journal.Record{DelayedFlush(10, past)})
			})
			for range 6 {
				wg.Go(func() {
					<-start
					for range 10 {
						if err := b.Apply(context.Background(), []journal.Record{Set(2, "b", "2", 0, 0)}); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			b.Close()
			b = openT(t, open)
			Want(t, b, "a", "", 0, 0)
			wantPending(t, b, 10, past)
		})
	}
}
