package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDurableDiskFull runs the journal on a 2 MiB tmpfs and fills it: writes
// must then fail (SERVER_ERROR, or the connection closed for the write in
// flight when the disk filled) and never be acknowledged, reads of durable
// data must go on, the failure must show in stats, and after a restart with
// space freed every acknowledged write must be there. It needs root (mount)
// and is skipped otherwise.
func TestDurableDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); this test needs root", err, strings.TrimSpace(string(out)))
	}
	// Registered first, so it runs after the servers are stopped.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	s := startDurable(t, mnt, "--journal-segment-size", "64k")
	mc := mustDialMC(t, s)
	const acked = 50
	for i := 0; i < acked; i++ {
		if l, err := mc.line(fmt.Sprintf("set k%d 0 0 5\r\nv%04d\r\n", i, i)); err != nil || l != "STORED" {
			t.Fatalf("set k%d: %q, %v", i, l, err)
		}
	}
	fillDisk(t, filepath.Join(mnt, "filler"))

	// Writes now fail. The one in flight when the disk filled loses its
	// connection; later ones get SERVER_ERROR at once.
	big := strings.Repeat("x", 8000)
	var storedLater []string
	sawError := false
	for i := 0; i < 100 && !sawError; i++ {
		key := fmt.Sprintf("x%d", i)
		l, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(big), big))
		switch {
		case err != nil:
			mc = mustDialMC(t, s) // closed: the write was not acknowledged
		case l == "STORED":
			storedLater = append(storedLater, key) // the disk still had room
		case strings.HasPrefix(l, "SERVER_ERROR"):
			sawError = true
			t.Logf("write on a full disk: %s", l)
		default:
			t.Fatalf("set %s on a full disk: %q", key, l)
		}
	}
	if !sawError {
		t.Fatal("100 writes on a full disk and none got SERVER_ERROR")
	}
	if l, err := mc.line("delete k0\r\n"); err != nil || !strings.HasPrefix(l, "SERVER_ERROR") {
		t.Errorf("delete on a failed journal: %q, %v; want SERVER_ERROR", l, err)
	}
	// Reads of durable data go on, misses too.
	checkKeys(t, mustDialMC(t, s), acked, storedLater)
	if got, err := mustDialMC(t, s).gets("never-written"); err != nil || len(got) != 0 {
		t.Errorf("a miss on a failed journal: %v, %v", got, err)
	}
	if v := statUint(t, mustDialMC(t, s), "journal_failed"); v != 1 {
		t.Errorf("stats journal_failed = %d, want 1", v)
	}

	// Free the space and restart: everything acknowledged is there.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startDurable(t, mnt, "--journal-segment-size", "64k")
	checkKeys(t, mustDialMC(t, s2), acked, storedLater)
	if l, err := mustDialMC(t, s2).line("set after 0 0 1\r\na\r\n"); err != nil || l != "STORED" {
		t.Errorf("set after the restart: %q, %v", l, err)
	}
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// checkKeys reads k0..k(n-1) and the extra keys and wants them all.
func checkKeys(t *testing.T, mc *mcClient, n int, extra []string) {
	t.Helper()
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k%d", i)
		got, err := mc.gets(key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if want := fmt.Sprintf("v%04d", i); got[key].data != want {
			t.Errorf("%s = %q, want %q", key, got[key].data, want)
		}
	}
	for _, key := range extra {
		if got, err := mc.gets(key); err != nil || len(got) != 1 {
			t.Errorf("%s (acknowledged before the disk was full): %v, %v", key, got, err)
		}
	}
}
