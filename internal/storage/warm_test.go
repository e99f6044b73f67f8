package storage

import (
	"context"
	"fmt"
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
