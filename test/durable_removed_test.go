package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDurableJournalRemoved removes DIR/journal under a running server.
// The open segment's file descriptor keeps writes to the unlinked file
// working, so the server must notice the removal itself: no write after it
// may be acknowledged, reads go on. The next start must refuse with advice
// that loses nothing (start with --repair, not move the store aside); with
// --repair it must continue from the store, with every key the store held,
// and new writes must be numbered after the store's and survive a restart.
func TestDurableJournalRemoved(t *testing.T) {
	dir := t.TempDir()
	s := startDurable(t, dir)
	mc := mustDialMC(t, s)
	const n = 50
	setKeys(t, mc, n)
	// In the store, so that stop's flush makes them durable there.
	applied := waitApplied(t, s, 60*time.Second)
	if err := os.RemoveAll(filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}

	// The write that meets the removal loses its connection, later ones
	// get SERVER_ERROR; none is acknowledged.
	sawError := false
	for i := 0; i < 5 && !sawError; i++ {
		l, err := mc.line(fmt.Sprintf("set gone%d 0 0 1\r\ng\r\n", i))
		switch {
		case err != nil:
			mc = mustDialMC(t, s)
		case strings.HasPrefix(l, "SERVER_ERROR"):
			sawError = true
			t.Logf("a write after the removal: %s", l)
		default:
			t.Fatalf("set gone%d after the journal was removed: %q; want it refused", i, l)
		}
	}
	if !sawError {
		t.Fatal("5 writes after the journal was removed and none got SERVER_ERROR")
	}
	checkKeys(t, mustDialMC(t, s), n, nil)
	if v := statUint(t, mustDialMC(t, s), "journal_failed"); v != 1 {
		t.Errorf("stats journal_failed = %d, want 1", v)
	}
	if err := s.Stop(); err != nil { // flushes the store
		t.Fatal(err)
	}
	if log := s.stderr.String(); !strings.Contains(log, "JOURNAL FAILED") || !strings.Contains(log, "removed from disk") {
		t.Errorf("the log does not report the removed journal:\n%s", log)
	}

	o := listenOpts{args: []string{"--data-dir", dir}}
	_, err := startServerErr(t, "petrel", petrel(t), petrelServe, o)
	if err == nil {
		t.Fatal("the start after the journal was removed succeeded; want a refusal")
	}
	if msg := err.Error(); !strings.Contains(msg, "start with --repair") || strings.Contains(msg, "rebuild the store from the journal") {
		t.Fatalf("the refusal after the journal was removed: %v; want advice to start with --repair", err)
	}

	o.args = append(o.args, "--repair")
	s2 := startPetrel(t, o)
	if log := s2.stderr.String(); !strings.Contains(log, fmt.Sprintf("JOURNAL RESTARTED at sequence %d", applied+1)) {
		t.Errorf("the repair does not log where the journal restarts (after %d):\n%s", applied, log)
	}
	mc2 := mustDialMC(t, s2)
	checkKeys(t, mc2, n, nil)
	for i := 0; i < 10; i++ {
		if l, err := mc2.line(fmt.Sprintf("set new%d 0 0 1\r\nn\r\n", i)); err != nil || l != "STORED" {
			t.Fatalf("set new%d after the repair: %q, %v", i, l, err)
		}
	}
	if got, err := mc2.gets("new0"); err != nil || got["new0"].cas <= applied {
		t.Errorf("new0 after the repair: %v, %v; want a CAS (sequence) above the store's %d", got, err, applied)
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}

	s3 := startDurable(t, dir)
	mc3 := mustDialMC(t, s3)
	var news []string
	for i := 0; i < 10; i++ {
		news = append(news, fmt.Sprintf("new%d", i))
	}
	checkKeys(t, mc3, n, news)
	if got, err := mc3.gets("gone0", "gone1"); err != nil || len(got) != 0 {
		t.Errorf("writes refused after the removal came back: %v, %v", got, err)
	}
}
