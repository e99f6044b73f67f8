package server

import (
	"strings"
	"testing"

	"petrel/internal/journal"
)

// TestCheckAppliedJournalBehind: a journal that ends below what the backend
// has applied (removed, or cut) is refused with advice to use --repair,
// never to move the store aside; with --repair the journal starts again
// after the backend's sequence.
func TestCheckAppliedJournalBehind(t *testing.T) {
	f := func(repair bool, applied uint64, wantErr string, wantNext uint64) {
		t.Helper()
		j, err := journal.Open(journal.Options{Dir: t.TempDir(), Repair: repair})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		err = checkApplied(j, applied)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("repair %v, applied %d: %v", repair, applied, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr) || strings.Contains(err.Error(), "rebuild the store")):
			t.Errorf("repair %v, applied %d: %v; want %q", repair, applied, err, wantErr)
		}
		if next := j.Stats().NextSeq; next != wantNext {
			t.Errorf("repair %v, applied %d: next sequence %d, want %d", repair, applied, next, wantNext)
		}
	}
	f(false, 0, "", 1)
	f(false, 40, "start with --repair", 1)
	f(true, 40, "", 41)
	f(true, 0, "", 1)
}
