package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// TestCommandsRefuseUnfinishedRestore: a data directory that a restore
// left unfinished (its marker) is refused by `petrel storer` and `snapshot
// create`, which say what to run; running it makes the directory usable.
// And snapshot create beside a storer names what to stop (there is no
// server endpoint to take a snapshot from, as it used to advise).
func TestCommandsRefuseUnfinishedRestore(t *testing.T) {
	src, snap, dir := t.TempDir(), filepath.Join(t.TempDir(), "snap"), t.TempDir()
	j, err := journal.Open(journal.Options{Dir: storage.JournalDir(src)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r := journal.Record{Type: journal.TypeSet, Key: []byte{'k', byte(i)}, Value: []byte("v")}
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f := func(run func([]string) error, args string, wantErr string) {
		t.Helper()
		err := run(append(strings.Fields(args), "-q"))
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: %v, want error %q", args, err, wantErr)
		}
	}
	f(snapshotMain, "create --data-dir "+src+" --out "+snap, "")
	f(snapshotMain, "restore "+snap+" --data-dir "+dir, "")
	// As a restore killed midway leaves it.
	marker := "snapshot: " + snap + "\n"
	if err := os.WriteFile(filepath.Join(dir, "restore.incomplete"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	again := "run `petrel snapshot restore " + snap + " --data-dir " + dir + " --force` again"
	f(storerMain, "--data-dir "+dir, again)
	f(snapshotMain, "create --data-dir "+dir+" --out "+filepath.Join(t.TempDir(), "s2"), again)
	f(snapshotMain, "restore "+snap+" --data-dir "+dir+" --force", "")
	f(storerMain, "--data-dir "+dir, "")
	f(snapshotMain, "create --data-dir "+dir+" --out "+filepath.Join(t.TempDir(), "s3"), "")

	lock, err := storage.LockStorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	f(snapshotMain, "create --data-dir "+dir+" --out "+filepath.Join(t.TempDir(), "s4"), "stop it and run this again")
}

// TestStopContextSecondSignalExits: the first SIGTERM cancels the context
// (a clean stop, which a store stuck on a full disk may make take up to
// twice storage.StoreStopTimeout); a second one exits at once.
func TestStopContextSecondSignalExits(t *testing.T) {
	exited := make(chan int, 1)
	exitNow = func(code int) { exited <- code }
	defer func() { exitNow = os.Exit }()
	ctx, stop := stopContext(t.Logf)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGTERM did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) on the first signal", code)
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit code %d, want %d", code, 128+int(syscall.SIGTERM))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second SIGTERM did not exit")
	}
}
