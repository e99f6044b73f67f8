package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDurableDiskFull runs the journal on a 2 MiB tmpfs and fills it: writes
// must then fail (SERVER_ERROR, or the connection closed for the write in
// flight when the disk filled) and never be acknowledged, reads of durable
// data must go on, and the failure must show in stats. Once space is freed
// the server must resume writes by itself (--journal-retry), and every
// acknowledged write must be there, before and after a restart. It needs root (mount)
// and is skipped otherwise.
func TestDurableDiskFull(t *testing.T) {
	mnt := smallTmpfs(t)
	// The first retry comes 3 s after the failure: the checks on the full
	// disk below run before it (and a retry on a full disk fails anyway).
	s := startDurable(t, mnt, "--journal-segment-size", "64k", "--journal-retry", "3s")
	mc := mustDialMC(t, s)
	const acked = 50
	setKeys(t, mc, acked)
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

	// Free the space: the server retries the journal and resumes writes
	// by itself, with everything acknowledged still there.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for statUint(t, mustDialMC(t, s), "journal_failed") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("writes did not resume within 30 s of freeing the disk")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l, err := mustDialMC(t, s).line("set resumed 0 0 1\r\nr\r\n"); err != nil || l != "STORED" {
		t.Errorf("set after the journal resumed: %q, %v", l, err)
	}
	checkKeys(t, mustDialMC(t, s), acked, append(storedLater, "resumed"))

	// And a restart finds the same.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startDurable(t, mnt, "--journal-segment-size", "64k")
	checkKeys(t, mustDialMC(t, s2), acked, append(storedLater, "resumed"))
	if l, err := mustDialMC(t, s2).line("set after 0 0 1\r\na\r\n"); err != nil || l != "STORED" {
		t.Errorf("set after the restart: %q, %v", l, err)
	}
}

// TestDurableStopOnFullDisk stops the server while its disk is full, so
// that the storer's last flush of the store cannot be written. Pebble
// retries such a flush forever and its Flush never returns; the server must
// still exit on SIGTERM, promptly, and lose nothing: once there is room, a
// restart replays from the journal what the store lacks.
func TestDurableStopOnFullDisk(t *testing.T) {
	mnt := smallTmpfs(t)
	s := startDurable(t, mnt, "--journal-segment-size", "64k")
	const acked = 50
	setKeys(t, mustDialMC(t, s), acked)
	fillDisk(t, filepath.Join(mnt, "filler"))
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("stopping on a full disk: %v\n%s", err, s.stderr.String())
	}
	t.Logf("stopped in %v on a full disk", time.Since(start).Round(time.Millisecond))
	if log := s.stderr.String(); !strings.Contains(log, "no space left on device") {
		t.Errorf("the log does not report the full disk:\n%s", log)
	}
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	s2 := startDurable(t, mnt, "--journal-segment-size", "64k")
	checkKeys(t, mustDialMC(t, s2), acked, nil)
}

// smallTmpfs mounts a 2 MiB tmpfs for the test and unmounts it afterwards;
// it skips the test when it cannot (mounting needs root).
func smallTmpfs(t *testing.T) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); this test needs root", err, strings.TrimSpace(string(out)))
	}
	// Registered before the servers start, so it runs after they stop.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
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

// setKeys sets k0..k(n-1), as checkKeys wants them.
func setKeys(t *testing.T, mc *mcClient, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if l, err := mc.line(fmt.Sprintf("set k%d 0 0 5\r\nv%04d\r\n", i, i)); err != nil || l != "STORED" {
			t.Fatalf("set k%d: %q, %v", i, l, err)
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

// TestDurableDropPrivileges starts as root with -u nobody: a data directory
// the start creates is handed to nobody, so writes go on past the files
// opened before the switch (a new journal segment); one that root owns is
// refused at the start, not at the journal's next segment.
func TestDurableDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to switch to nobody")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	base := t.TempDir()
	// nobody must be able to reach the data directory.
	for d := base; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "d")
	s := startDurable(t, dir, "-u", "nobody", "--journal-segment-size", "64k")
	const n = 200 // 1,000-byte values: several segments
	mc := mustDialMC(t, s)
	v := strings.Repeat("v", 1000)
	for i := range n {
		if l, err := mc.line(fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(v), v)); err != nil || l != "STORED" {
			t.Fatalf("set k%d as nobody: %q, %v", i, l, err)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	owned := filepath.Join(base, "root-owned")
	if err := os.Mkdir(owned, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(petrel(t), "serve", "-p", "0", "--data-dir", owned, "-u", "nobody").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not writable by nobody") {
		t.Errorf("start on a root-owned data directory with -u nobody: %v\n%s", err, out)
	}
}

// TestSecondSignalExits: a second SIGTERM ends a stop at once. The stop is
// held up here by a write-through reply whose backend (dynalite, killed)
// does not answer, with a long --backend-timeout and shutdown grace.
func TestSecondSignalExits(t *testing.T) {
	dir := t.TempDir()
	env := newBackendEnv(t, "dynamodb", dir)
	s := startDurable(t, dir, append(env.args, "--backend-mode=write-through", "--backend-timeout=10m", "--shutdown-grace=600")...)
	env.down()
	if _, err := mustDialMC(t, s).c.Write([]byte("set k 0 0 1\r\nv\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	select {
	case <-s.exited:
		t.Fatal("the first SIGTERM ended a stop that should still be waiting")
	default:
	}
	if err := s.Stop(); err != nil { // the second SIGTERM
		t.Fatalf("a second SIGTERM: %v", err)
	}
}
