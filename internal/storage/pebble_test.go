package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"petrel/internal/journal"
)

func set(seq uint64, key, val string) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeSet, Key: []byte(key), Value: []byte(val), Flags: uint32(seq)}
}

func del(seq uint64, key string) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeDelete, Key: []byte(key)}
}

func touch(seq uint64, key string, exp int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeTouch, Key: []byte(key), Exptime: exp}
}

func flushAll(seq uint64, at int64) journal.Record {
	return journal.Record{Seq: seq, Type: journal.TypeFlushAll, At: at}
}

// testNow is the clock the tests give Pebble and read with.
const testNow = 1_000_000

func openTestPebble(t *testing.T, dir string) *Pebble {
	t.Helper()
	p, err := OpenPebble(dir, PebbleOptions{Now: func() int64 { return testNow }, CacheBytes: 1 << 20, MemTableBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustApply(t *testing.T, b Backend, recs ...journal.Record) {
	t.Helper()
	if err := b.Apply(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// contents returns key → "value@version" for every live item at now.
func contents(t *testing.T, b Backend, now int64) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := b.Scan(context.Background(), now, func(it Item) error {
		m[string(it.Key)] = fmt.Sprintf("%s@%d", it.Value, it.Version)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkGet(t *testing.T, b Backend, key string, now int64, want string) {
	t.Helper()
	it, ok, err := b.Get(context.Background(), []byte(key), now)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	if ok {
		got = fmt.Sprintf("%s@%d", it.Value, it.Version)
	}
	if got != want {
		t.Errorf("get %q at %d = %q, want %q", key, now, got, want)
	}
}

func TestPebbleApplyIdempotent(t *testing.T) {
	p := openTestPebble(t, t.TempDir())
	defer p.Close()
	batch := []journal.Record{set(1, "a", "1"), set(2, "b", "2"), del(3, "a"), set(4, "c", "4"), touch(5, "c", testNow+100)}
	mustApply(t, p, batch...)
	first := contents(t, p, testNow)
	mustApply(t, p, batch...)
	mustApply(t, p, batch[1:3]...)
	if got := contents(t, p, testNow); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Errorf("after re-applying: %v, want %v", got, first)
	}
	if want := "map[b:2@2 c:4@5]"; fmt.Sprint(first) != want {
		t.Errorf("contents = %v, want %s", first, want)
	}
	if seq, _ := p.AppliedSeq(context.Background()); seq != 5 {
		t.Errorf("AppliedSeq = %d, want 5", seq)
	}
}

// Batches applied out of order, as a racing writer would, never take a key
// back in time.
func TestPebbleMonotonic(t *testing.T) {
	f := func(name string, batches [][]journal.Record, key string, want string) {
		t.Helper()
		p := openTestPebble(t, t.TempDir())
		defer p.Close()
		for _, b := range batches {
			mustApply(t, p, b...)
		}
		it, ok, err := p.Get(context.Background(), []byte(key), testNow)
		got := ""
		if ok {
			got = fmt.Sprintf("%s@%d", it.Value, it.Version)
		}
		if err != nil || got != want {
			t.Errorf("%s: get %q = %q, %v; want %q", name, key, got, err, want)
		}
	}
	f("older set after newer", [][]journal.Record{{set(5, "k", "new")}, {set(3, "k", "old")}}, "k", "new@5")
	f("tombstone then older set", [][]journal.Record{{del(7, "k")}, {set(6, "k", "old")}}, "k", "")
	f("newer set after tombstone", [][]journal.Record{{del(7, "k")}, {set(8, "k", "new")}}, "k", "new@8")
	f("older touch after newer set", [][]journal.Record{{set(5, "k", "v")}, {touch(4, "k", 1)}}, "k", "v@5")
	f("touch of a missing key", [][]journal.Record{{touch(4, "k", 1)}}, "k", "")
	f("same seq twice", [][]journal.Record{{set(5, "k", "v")}, {set(5, "k", "w")}}, "k", "v@5")
}

func TestPebbleExpiryAndFlushMarkers(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, dir)
	mustApply(t, p,
		journal.Record{Seq: 1, Type: journal.TypeSet, Key: []byte("exp"), Value: []byte("v"), Exptime: testNow + 10},
		set(2, "old", "v"),
		flushAll(3, testNow+50), // delayed: hides versions below 3 from testNow+50
		set(4, "new", "v"),
	)
	f := func(key string, now int64, want string) { t.Helper(); checkGet(t, p, key, now, want) }
	f("exp", testNow+9, "v@1")
	f("exp", testNow+10, "")
	f("old", testNow+49, "v@2")
	f("old", testNow+50, "")
	f("new", testNow+50, "v@4")
	if got := len(contents(t, p, testNow+50)); got != 1 {
		t.Errorf("scan after the delayed flush: %d items, want 1", got)
	}
	// Markers survive a reopen.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir)
	defer p.Close()
	f("old", testNow+50, "")
	f("old", testNow+49, "v@2")
	// An immediate flush removes everything and keeps older sets out.
	mustApply(t, p, set(5, "x", "v"), flushAll(6, testNow), set(7, "y", "v"))
	if got := fmt.Sprint(contents(t, p, testNow)); got != "map[y:v@7]" {
		t.Errorf("after flush_all: %s", got)
	}
	mustApply(t, p, set(5, "x", "v"), set(2, "old", "v"))
	f("x", testNow, "")
	f("old", testNow, "")
	if items, _ := p.LiveSize(); items != 1 {
		t.Errorf("LiveSize items = %d, want 1", items)
	}
}

func TestPebbleAppliedSeqAfterReopen(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, dir)
	mustApply(t, p, set(1, "a", "1"), set(2, "b", "2"))
	if p.DurableAppliedSeq() != 0 {
		t.Errorf("durable before Flush = %d, want 0", p.DurableAppliedSeq())
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if p.DurableAppliedSeq() != 2 {
		t.Errorf("durable after Flush = %d, want 2", p.DurableAppliedSeq())
	}
	mustApply(t, p, set(3, "a", "3"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir)
	defer p.Close()
	seq, err := p.AppliedSeq(context.Background())
	if err != nil || seq != 3 || p.DurableAppliedSeq() != 3 {
		t.Errorf("after reopen: applied %d (%v), durable %d; want 3", seq, err, p.DurableAppliedSeq())
	}
	checkGet(t, p, "a", testNow, "3@3")
}

// TestPebbleModel applies random batches, each possibly twice, and
// compares the store with a map that keeps the last write per key.
func TestPebbleModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	dir := t.TempDir()
	p := openTestPebble(t, dir)
	defer func() { p.Close() }()
	type entry struct {
		val string
		ver uint64
		exp int64
	}
	model := map[string]entry{}
	seq := uint64(0)
	for round := 0; round < 200; round++ {
		var batch []journal.Record
		for n := rng.IntN(20); n >= 0; n-- {
			seq++
			key := fmt.Sprintf("k%d", rng.IntN(30))
			switch r := rng.IntN(100); {
			case r < 60:
				v := fmt.Sprintf("v%d", seq)
				batch = append(batch, set(seq, key, v))
				model[key] = entry{v, seq, 0}
			case r < 85:
				batch = append(batch, del(seq, key))
				delete(model, key)
			case r < 98:
				exp := int64(testNow + rng.IntN(3) - 1)
				batch = append(batch, touch(seq, key, exp))
				if e, ok := model[key]; ok {
					model[key] = entry{e.val, seq, exp}
				}
			default:
				batch = append(batch, flushAll(seq, testNow))
				clear(model)
			}
		}
		mustApply(t, p, batch...)
		if rng.IntN(3) == 0 {
			mustApply(t, p, batch[rng.IntN(len(batch)):]...)
		}
		if rng.IntN(20) == 0 {
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			p = openTestPebble(t, dir)
		}
	}
	want := map[string]string{}
	for k, e := range model {
		if e.exp == 0 || e.exp > testNow {
			want[k] = fmt.Sprintf("%s@%d", e.val, e.ver)
		}
	}
	got := contents(t, p, testNow)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("store differs from the model:\n got %v\nwant %v", got, want)
	}
	for k, w := range want {
		checkGet(t, p, k, testNow, w)
	}
}

// BenchmarkPebbleApply measures the storer's apply path: batches of 4096
// sets of 100-byte values over a million keys.
func BenchmarkPebbleApply(b *testing.B) {
	p, err := OpenPebble(b.TempDir(), PebbleOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	val := make([]byte, 100)
	batch := make([]journal.Record, 4096)
	seq := uint64(0)
	b.SetBytes(int64(len(batch) * (len(val) + 16)))
	for b.Loop() {
		for i := range batch {
			seq++
			batch[i] = journal.Record{Seq: seq, Type: journal.TypeSet, Key: fmt.Appendf(batch[i].Key[:0], "key:%07d", seq*7919%1_000_000), Value: val}
		}
		if err := p.Apply(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "records/s")
}

func TestPebbleLiveSize(t *testing.T) {
	f := func(exact bool, wantItems, wantBytes int64) {
		t.Helper()
		p, err := OpenPebble(t.TempDir(), PebbleOptions{ExactLiveSize: exact, Now: func() int64 { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		mustApply(t, p, set(1, "a", "12345"), set(2, "b", "1"), set(3, "a", "1"), del(4, "b"), del(5, "nope"))
		if items, bytes := p.LiveSize(); items != wantItems || bytes != wantBytes {
			t.Errorf("exact=%v: LiveSize = %d items %d bytes, want %d, %d", exact, items, bytes, wantItems, wantBytes)
		}
	}
	f(true, 1, 2)
	f(false, 3, 10) // an upper bound: blind overwrites and deletes
}
