package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"petrel/internal/journal"
)

func TestFoldRecords(t *testing.T) {
	set := func(seq uint64, key, val string) journal.Record {
		return journal.Record{Seq: seq, Type: journal.TypeSet, Key: []byte(key), Value: []byte(val)}
	}
	del := func(seq uint64, key string) journal.Record {
		return journal.Record{Seq: seq, Type: journal.TypeDelete, Key: []byte(key)}
	}
	touch := func(seq uint64, key string, exp int64) journal.Record {
		return journal.Record{Seq: seq, Type: journal.TypeTouch, Key: []byte(key), Exptime: exp}
	}
	flush := func(seq uint64, at int64) journal.Record {
		return journal.Record{Seq: seq, Type: journal.TypeFlushAll, At: at}
	}
	// show renders a folded batch as "key=kind@version,…;floor;pending;max".
	show := func(f folded) string {
		var parts []string
		for _, e := range f.effects {
			kind := [...]string{"set", "del", "touch"}[e.kind]
			s := fmt.Sprintf("%s=%s@%d", e.key, kind, e.version)
			if e.kind == effectSet {
				s += ":" + string(e.value)
			}
			if e.exptime != 0 {
				s += fmt.Sprintf("/e%d", e.exptime)
			}
			parts = append(parts, s)
		}
		return fmt.Sprintf("%s;floor=%d;pending=%d@%d;max=%d", strings.Join(parts, ","), f.floor, f.pending.seq, f.pending.at, f.maxSeq)
	}
	const now = 1000
	f := func(floor uint64, want string, recs ...journal.Record) {
		t.Helper()
		got, err := foldRecords(recs, floor, now)
		if err != nil {
			t.Fatalf("foldRecords: %v", err)
		}
		if s := show(got); s != want {
			t.Errorf("fold(%v)\n got %s\nwant %s", recs, s, want)
		}
	}
	f(0, "a=set@1:x,b=set@2:y;floor=0;pending=0@0;max=2", set(2, "b", "y"), set(1, "a", "x"))
	f(0, "a=set@3:z;floor=0;pending=0@0;max=3", set(1, "a", "x"), del(2, "a"), set(3, "a", "z"))
	f(0, "a=del@2;floor=0;pending=0@0;max=3", set(1, "a", "x"), del(2, "a"), touch(3, "a", 5))
	f(0, "a=set@2:x/e5;floor=0;pending=0@0;max=2", set(1, "a", "x"), touch(2, "a", 5))
	f(0, "a=touch@2/e7;floor=0;pending=0@0;max=2", touch(1, "a", 5), touch(2, "a", 7))
	f(0, "a=set@3:n;floor=0;pending=0@0;max=3", set(3, "a", "n"), set(2, "a", "old"))
	f(0, "b=set@4:y;floor=3;pending=0@0;max=4", set(1, "a", "x"), set(2, "b", "x"), flush(3, now), set(4, "b", "y"))
	f(0, "a=set@1:x;floor=0;pending=2@2000;max=2", set(1, "a", "x"), flush(2, 2000))
	f(0, ";floor=3;pending=0@0;max=3", flush(2, 2000), flush(3, now-5))
	f(5, "b=set@6:y;floor=0;pending=0@0;max=6", set(4, "a", "x"), set(6, "b", "y"))
	f(5, ";floor=0;pending=0@0;max=3", set(3, "a", "x"))

	if _, err := foldRecords([]journal.Record{{Seq: 1, Type: 99}}, 0, now); err == nil {
		t.Error("unknown record type: no error")
	}
}

func TestVisible(t *testing.T) {
	f := func(version uint64, exptime int64, tomb bool, pending flushMark, now int64, want bool) {
		t.Helper()
		if got := visible(version, exptime, tomb, pending, now); got != want {
			t.Errorf("visible(v%d, exp %d, tomb %v, pending %+v, now %d) = %v, want %v", version, exptime, tomb, pending, now, got, want)
		}
	}
	f(1, 0, false, flushMark{}, 100, true)
	f(1, 0, true, flushMark{}, 100, false)
	f(1, 100, false, flushMark{}, 100, false) // expires at its second, as memcached
	f(1, 101, false, flushMark{}, 100, true)
	f(1, 0, false, flushMark{seq: 2, at: 100}, 100, false)
	f(1, 0, false, flushMark{seq: 2, at: 101}, 100, true)
	f(3, 0, false, flushMark{seq: 2, at: 100}, 100, true)
}

func TestErrorKinds(t *testing.T) {
	f := func(err error, classify func(error) string, want string) {
		t.Helper()
		got := withKind(err, classify)
		var k interface{ ErrorKind() string }
		if !errors.As(got, &k) || k.ErrorKind() != want {
			t.Errorf("withKind(%v) kind = %v, want %s", err, got, want)
		}
		if !errors.Is(got, err) {
			t.Errorf("withKind(%v) does not wrap it", err)
		}
	}
	other := func(error) string { return "error" }
	f(context.DeadlineExceeded, other, "timeout")
	f(fmt.Errorf("apply: %w", ErrValueTooLarge), other, "too_large")
	f(io.ErrUnexpectedEOF, other, "unavailable")
	f(errors.New("boom"), other, "error")
	f(errors.New("boom"), pgKind, "error")
	if withKind(nil, other) != nil {
		t.Error("withKind(nil) != nil")
	}
}
