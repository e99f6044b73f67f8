package storage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"petrel/internal/journal"
)

// noSizer hides Pebble's LiveSize, to force the two-pass path.
type noSizer struct{ Backend }

func TestWarm(t *testing.T) {
	p := openTestPebble(t, t.TempDir())
	defer p.Close()
	var recs []journal.Record
	for i := range 1000 {
		// Keys in reverse write order, so key order is oldest last.
		recs = append(recs, set(uint64(i+1), fmt.Sprintf("k%04d", 1000-i), strings.Repeat("v", 52)))
	}
	mustApply(t, p, recs...)
	const size = 5 + 52 + ItemOverhead
	f := func(name string, b Backend, limit int64, wantItems int, wantMinVersion uint64) {
		t.Helper()
		var n int
		minV := ^uint64(0)
		var lastItems int64
		err := Warm(context.Background(), b, testNow, limit, func(it Item) error {
			n++
			minV = min(minV, it.Version)
			return nil
		}, func(items, bytes int64) { lastItems = items })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != wantItems || lastItems != int64(n) || minV < wantMinVersion {
			t.Errorf("%s: loaded %d items (progress %d), oldest version %d; want %d, oldest ≥ %d",
				name, n, lastItems, minV, wantItems, wantMinVersion)
		}
	}
	f("no limit", p, 0, 1000, 1)
	f("fits", p, 1000*size, 1000, 1)
	f("sized by LiveSize, too small", p, 100*size, 100, 900)
	f("two passes", noSizer{p}, 250*size, 250, 750)
	f("two passes, fits", noSizer{p}, 2000*size, 1000, 1)
}

// TestScanParts checks that the key ranges ScanParts cuts are disjoint, in
// order and together hold exactly what Scan holds, and that their sizes
// are not far apart.
func TestScanParts(t *testing.T) {
	defer func(v uint64) { splitMinBytes = v }(splitMinBytes)
	splitMinBytes = 0
	p := openTestPebble(t, t.TempDir()) // 1 MiB memtables: overlapping L0 files
	defer p.Close()
	rnd := rand.New(rand.NewPCG(3, 4))
	const n = 20000
	var recs []journal.Record
	for i, k := range rnd.Perm(n) {
		val := make([]byte, 100)
		for j := range val {
			val[j] = byte(rnd.Uint32())
		}
		recs = append(recs, set(uint64(i+1), fmt.Sprintf("user:%06d", k), string(val)))
		if i%7 == 0 {
			recs = append(recs, del(uint64(i+1)+n, fmt.Sprintf("user:%06d", rnd.IntN(n))))
		}
	}
	slices.SortFunc(recs, func(a, b journal.Record) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := 0; i < len(recs); i += 500 {
		mustApply(t, p, recs[i:min(i+500, len(recs))]...)
	}
	want := contents(t, p, testNow)
	empty := openTestPebble(t, t.TempDir())
	defer empty.Close()
	f := func(name string, b Backend, parts, wantMin, wantMax int, want map[string]string) {
		t.Helper()
		ps := ScanParts(b, parts)
		if len(ps) < wantMin || len(ps) > wantMax {
			t.Errorf("%s: %d parts, want %d to %d", name, len(ps), wantMin, wantMax)
		}
		got := map[string]string{}
		var last string
		var largest int
		for i, part := range ps {
			size := 0
			err := part(context.Background(), testNow, func(it Item) error {
				if k := string(it.Key); k <= last {
					t.Fatalf("%s: part %d yields %q after %q: not disjoint and in order", name, i, k, last)
				}
				last = string(it.Key)
				got[last] = fmt.Sprintf("%s@%d", it.Value, it.Version)
				size++
				return nil
			})
			if err != nil {
				t.Fatalf("%s: part %d: %v", name, i, err)
			}
			largest = max(largest, size)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: the parts hold %d items, Scan %d", name, len(got), len(want))
		}
		if len(ps) > 1 && largest > 3*len(want)/len(ps) {
			t.Errorf("%s: the largest of %d parts holds %d of %d items", name, len(ps), largest, len(want))
		}
	}
	f("one", p, 1, 1, 1, want)
	f("eight", p, 8, 4, 8, want)
	f("not Pebble", noSizer{p}, 8, 1, 1, want)
	f("empty", empty, 8, 1, 1, map[string]string{})
	mustApply(t, empty, set(1, "only", "x"))
	f("one key", empty, 8, 1, 1, map[string]string{"only": "x@1"})
}
