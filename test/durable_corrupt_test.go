package test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestDurableCorruptJournal damages a journal file in the middle (not the
// last one, so it cannot be a torn tail): petrel must refuse to start and
// name the file; with --repair it starts, cutting the journal there (or,
// if the store had applied beyond the cut, restarting the journal after
// what the store holds); and the writes before the damage are there,
// those after it are not unless the store had them.
func TestDurableCorruptJournal(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--journal-segment-size", "64k"}
	s := startDurable(t, dir, args...)
	mc := mustDialMC(t, s)
	val := strings.Repeat("v", 1000)
	const n = 300 // about 300 KiB: several 64 KiB journal files
	// Pipelined in batches (a group never spans two files, and each batch
	// makes a group or a few), so that it is done long before the storer's
	// first flush (10 s), after which it truncates the files it holds.
	for b := 0; b < n; b += 30 {
		var req strings.Builder
		for i := b; i < b+30; i++ {
			fmt.Fprintf(&req, "set k%d 0 0 %d noreply\r\n%s\r\n", i, len(val), val)
		}
		if l, err := mc.line(req.String() + "mn\r\n"); err != nil || l != "MN" {
			t.Fatalf("storing: %q, %v", l, err)
		}
	}
	// A crash: a clean stop lets the storer flush the store and truncate
	// the journal files it holds.
	s.kill()
	segs, _ := filepath.Glob(filepath.Join(dir, "journal", "*.journal"))
	sort.Strings(segs)
	if len(segs) < 2 {
		t.Skipf("%d journal file left (the storer truncated the others): nothing in the middle to damage", len(segs))
	}
	bad := segs[len(segs)-2]
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}

	o := listenOpts{args: append([]string{"--data-dir", dir}, args...)}
	_, err = startServerErr(t, "petrel", petrel(t), petrelServe, o)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(bad)) || !strings.Contains(err.Error(), "--repair") {
		t.Fatalf("starting over mid-journal corruption: %v; want a refusal naming %s and --repair", err, filepath.Base(bad))
	}
	o.args = append(o.args, "--repair")
	s2 := startPetrel(t, o)
	// The store may have applied beyond the cut (a memtable flush): then
	// the journal restarts after what the store holds, which keeps it.
	restarted := strings.Contains(s2.stderr.String(), "JOURNAL RESTARTED")
	if out := s2.stderr.String(); !strings.Contains(out, filepath.Base(bad)) {
		t.Errorf("the repair is not logged with the file it cut:\n%s", out)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	got, err := mustDialMC(t, s2).gets(keys...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[keys[n-1]]; (ok && !restarted) || len(got) == 0 {
		t.Errorf("after the repair %d of %d keys are there, the last one %v; want those before the damage only", len(got), n, ok)
	}
	t.Logf("the repair kept %d of %d writes", len(got), n)
}
