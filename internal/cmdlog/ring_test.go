package cmdlog

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestRingRoundTrip(t *testing.T) {
	r := newRing(1024, "c", nil)
	in := []Record{
		{Time: 1, Cmd: CmdGet, Result: ResHit, Key: []byte("a"), VLen: 3, RLen: 20},
		{Time: 2, Cmd: CmdSet, Result: ResStored, Key: []byte("key\x00bin"), Flags: 7, TTL: -1},
		{Time: 3, Cmd: CmdFlushAll, Result: ResOK, NoKey: true, Client: []byte("udp:1.2.3.4:5")},
	}
	for i := range in {
		if !r.Put(&in[i]) {
			t.Fatalf("Put %d refused", i)
		}
	}
	var got []Record
	_, n := r.drain(nil, func(rec *Record) {
		c := *rec
		c.Key = bytes.Clone(rec.Key)
		c.Client = bytes.Clone(rec.Client)
		got = append(got, c)
	})
	if n != len(in) {
		t.Fatalf("drained %d records, want %d", n, len(in))
	}
	for i := range in {
		w := in[i]
		if w.Key == nil {
			w.Key = []byte{} // a keyless record decodes to an empty key
		}
		want := fmt.Sprintf("%+v", w)
		if g := fmt.Sprintf("%+v", got[i]); g != want {
			t.Errorf("record %d:\n got %s\nwant %s", i, g, want)
		}
	}
}

// TestRingFullDrops fills a ring with no consumer: Put refuses rather than
// waits, and counts every refusal; after a drain there is room again.
func TestRingFullDrops(t *testing.T) {
	r := newRing(1024, "c", nil)
	rec := Record{Cmd: CmdGet, Key: bytes.Repeat([]byte("k"), 28)} // 64 bytes encoded
	accepted := 0
	for range 100 {
		if r.Put(&rec) {
			accepted++
		}
	}
	if accepted != 1024/64 {
		t.Errorf("accepted %d records, want %d", accepted, 1024/64)
	}
	if d := r.Drops(); d != uint64(100-accepted) {
		t.Errorf("drops = %d, want %d", d, 100-accepted)
	}
	if _, n := r.drain(nil, func(*Record) {}); n != accepted {
		t.Errorf("drained %d, want %d", n, accepted)
	}
	if !r.Put(&rec) {
		t.Error("Put refused after drain")
	}
}

// TestRingConcurrent runs one producer against one consumer (run with
// -race): every record arrives intact and in order, or is counted dropped,
// including records that wrap around the end of the buffer.
func TestRingConcurrent(t *testing.T) {
	r := newRing(1024, "c", nil)
	const total = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		key := make([]byte, 0, 32)
		for i := range total {
			key = fmt.Appendf(key[:0], "key-%d-%s", i, bytes.Repeat([]byte("x"), i%17))
			rec := Record{Time: int64(i), Cmd: CmdGet, Key: key, VLen: uint32(i)}
			r.Put(&rec)
		}
		r.Release()
	}()
	var scratch []byte
	next, seen := int64(-1), 0
	check := func(rec *Record) {
		want := fmt.Sprintf("key-%d-%s", rec.Time, bytes.Repeat([]byte("x"), int(rec.Time)%17))
		if string(rec.Key) != want || rec.VLen != uint32(rec.Time) || rec.Time <= next {
			t.Fatalf("bad record after %d: time %d key %q vlen %d", next, rec.Time, rec.Key, rec.VLen)
		}
		next = rec.Time
		seen++
	}
	for !r.done.Load() {
		scratch, _ = r.drain(scratch, check)
	}
	r.drain(scratch, check)
	wg.Wait()
	if uint64(seen)+r.Drops() != total {
		t.Errorf("seen %d + dropped %d != %d", seen, r.Drops(), total)
	}
}

func TestRingLongKeyCut(t *testing.T) {
	r := newRing(4096, "c", nil)
	r.Put(&Record{Key: bytes.Repeat([]byte("k"), 3000)})
	r.drain(nil, func(rec *Record) {
		if len(rec.Key) != maxKey {
			t.Errorf("key of %d bytes logged, want it cut to %d", len(rec.Key), maxKey)
		}
	})
}
