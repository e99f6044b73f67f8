package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDurableAcceptDuringWarmup crashes a server holding many items, each
// written twice, and restarts it with --accept-during-warmup, so that the
// load replays every key's first version, then its second. Meanwhile a
// client deletes and overwrites keys: once the load is done, every key the
// client set must hold the client's value and every key it deleted must be
// gone, though the load found a later record for it after the client's
// request. (Requests on keys not loaded yet wait for the load; if the load
// is over before the requests land, the test checks the plain case: it
// cannot fail for timing.)
func TestDurableAcceptDuringWarmup(t *testing.T) {
	dir := t.TempDir()
	s := startDurable(t, dir)
	mc := mustDialMC(t, s)
	const n = 100000
	for _, version := range []string{"a", "b"} {
		for b := 0; b < n; b += 5000 {
			var req strings.Builder
			for i := b; i < b+5000; i++ {
				fmt.Fprintf(&req, "set k%d 0 0 5 noreply\r\nold-%s\r\n", i, version)
			}
			if l, err := mc.line(req.String() + "mn\r\n"); err != nil || l != "MN" {
				t.Fatalf("storing: %q, %v", l, err)
			}
		}
	}
	s.kill() // the store has flushed nothing: the load replays the journal

	s2 := startDurable(t, dir, "--accept-during-warmup")
	mc = mustDialMC(t, s2)
	var req strings.Builder
	during := statUint(t, mc, "warmup_done") == 0
	for i := 0; i < n/10; i += 97 { // the keys the load reaches first
		if i%2 == 0 {
			fmt.Fprintf(&req, "set k%d 0 0 3 noreply\r\nnew\r\n", i)
		} else {
			fmt.Fprintf(&req, "delete k%d noreply\r\n", i)
		}
	}
	if l, err := mc.line(req.String() + "mn\r\n"); err != nil || l != "MN" {
		t.Fatalf("writing during the warm-up: %q, %v", l, err)
	}
	for deadline := time.Now().Add(time.Minute); statUint(t, mc, "warmup_done") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the warm-up did not finish within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the requests were sent while the warm-up was running: %v", during)
	for i := 0; i < n/10; i += 97 {
		key := fmt.Sprintf("k%d", i)
		got, err := mc.gets(key)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := got[key]
		switch {
		case i%2 == 0 && v.data != "new":
			t.Errorf("%s = %q (present %v) after the warm-up, want the client's \"new\"", key, v.data, ok)
		case i%2 == 1 && ok:
			t.Errorf("%s = %q after the warm-up, want it deleted by the client", key, v.data)
		}
	}
	if got, err := mc.gets("k1"); err != nil || got["k1"].data != "old-b" {
		t.Errorf("k1, untouched, = %v, %v; want old-b", got, err)
	}
}
