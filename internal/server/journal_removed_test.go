package server

import (
	"os"
	"strings"
	"testing"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// TestCheckAppliedJournalBehind: a journal that ends below what the backend
// has applied (removed, or cut) is refused with advice to use --repair,
// never to move the store aside; with --repair the journal starts again
// after the backend's sequence.
func TestCheckAppliedJournalBehind(t *testing.T) {
	// progress is what a petrel storer beside the server published (0 for
	// nothing, and then the server runs its own storer).
	f := func(repair bool, applied, progress uint64, wantErr string, wantNext uint64) {
		t.Helper()
		dir := t.TempDir()
		if progress > 0 {
			if err := storage.WriteStorerProgress(dir, storage.StorerProgress{Applied: progress}); err != nil {
				t.Fatal(err)
			}
		}
		j, err := journal.Open(journal.Options{Dir: t.TempDir(), Repair: repair})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		err = checkApplied(j, applied, progress > 0, dir)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("repair %v, applied %d, progress %d: %v", repair, applied, progress, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr) || strings.Contains(err.Error(), "rebuild the store")):
			t.Errorf("repair %v, applied %d, progress %d: %v; want %q", repair, applied, progress, err, wantErr)
		}
		if next := j.Stats().NextSeq; next != wantNext {
			t.Errorf("repair %v, applied %d, progress %d: next sequence %d, want %d", repair, applied, progress, next, wantNext)
		}
	}
	f(false, 0, 0, "", 1)
	f(false, 40, 0, "start with --repair", 1)
	f(true, 40, 0, "", 41)
	f(true, 0, 0, "", 1)
	// Beside petrel storer: the read-only view may lag what it applied.
	f(false, 0, 40, "Stop petrel storer", 1)
	f(false, 40, 30, "Stop petrel storer", 1)
}

// TestRepairBesidePetrelStorer: --repair is refused while another process
// holds the storer's lock, before the journal is opened (and cut).
func TestRepairBesidePetrelStorer(t *testing.T) {
	dir, cfg := besidePetrelStorer(t)
	cfg.Durable.Repair = true
	srv, err := New(cfg)
	if err == nil {
		srv.Shutdown()
		t.Fatal("--repair beside petrel storer: started")
	}
	if !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("--repair beside petrel storer: %v", err)
	}
	if _, err := os.Stat(storage.JournalDir(dir)); !os.IsNotExist(err) {
		t.Fatalf("the journal was opened before the refusal: %v", err)
	}
}
