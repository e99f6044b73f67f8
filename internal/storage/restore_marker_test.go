package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restoreFixture is a snapshot to restore and the contents it restores to.
type restoreFixture struct {
	snap string
	want string // fmt.Sprint of the restored contents
}

func newRestoreFixture(t *testing.T, seed uint64) restoreFixture {
	t.Helper()
	src, snap := t.TempDir(), filepath.Join(t.TempDir(), "snap")
	w := fillDataDir(t, src, seed)
	if _, err := CreateSnapshot(context.Background(), src, snap, nil); err != nil {
		t.Fatal(err)
	}
	return restoreFixture{snap: snap, want: fmt.Sprint(w.model)}
}

// oldDataDir is a data directory with data of its own, for --force; it
// returns its contents.
func oldDataDir(t *testing.T, dir string) string {
	t.Helper()
	fillDataDir(t, dir, 99)
	got, _ := restoredContents(t, dir)
	return fmt.Sprint(got)
}

// checkRestored checks that dir holds the snapshot and nothing of the
// restore's own.
func checkRestored(t *testing.T, name, dir string, fx restoreFixture) {
	t.Helper()
	if err := CheckRestore(dir); err != nil {
		t.Errorf("%s: CheckRestore after a completed restore = %v", name, err)
	}
	for _, n := range []string{restoreMarker, restoreStaging, restoreOld} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s left behind (%v)", name, n, err)
		}
	}
	if got, _ := restoredContents(t, dir); fmt.Sprint(got) != fx.want {
		t.Errorf("%s: restored contents differ:\n got %v\nwant %v", name, got, fx.want)
	}
}

// TestRestoreHelperProcess is the restore that TestRestoreKilled kills: it
// runs only as that test's child, and blocks at the step it is told.
func TestRestoreHelperProcess(t *testing.T) {
	step := os.Getenv("PETREL_RESTORE_KILL_AT")
	if step == "" {
		t.Skip("a helper process for TestRestoreKilled")
	}
	snap, dir := os.Getenv("PETREL_RESTORE_SNAP"), os.Getenv("PETREL_RESTORE_DIR")
	restoreHook = func(s string) error {
		if s == step {
			if err := os.WriteFile(dir+".ready", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			select {} // until killed
		}
		return nil
	}
	err := RestoreSnapshot(context.Background(), snap, dir, true, nil)
	t.Fatalf("restore returned %v; it should have been killed at %q", err, step)
}

// TestRestoreKilled kills (SIGKILL) a restore at each step. The data
// directory must then be refused by CheckRestore (and so by the server,
// `petrel storer` and snapshot create), with the command to run; running it
// completes the restore. A copy killed before the swap has not touched the
// old data. Before the marker, a server started on such a directory as an
// empty store (orphan sstables, no MANIFEST), or on a cut journal.
func TestRestoreKilled(t *testing.T) {
	fx := newRestoreFixture(t, 11)
	f := func(name, step string, old bool) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		var oldContents string
		if old {
			oldContents = oldDataDir(t, dir)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreHelperProcess$")
		cmd.Env = append(os.Environ(), "PETREL_RESTORE_KILL_AT="+step, "PETREL_RESTORE_SNAP="+fx.snap, "PETREL_RESTORE_DIR="+dir)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(dir + ".ready"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%s: the restore never reached %q:\n%s", name, step, out.String())
			}
		}
		cmd.Process.Kill()
		cmd.Wait()

		err := CheckRestore(dir)
		abs, _ := filepath.Abs(fx.snap)
		want := fmt.Sprintf("a snapshot restore into %s did not finish, and its data may be incomplete; "+
			"run `petrel snapshot restore %s --data-dir %s --force` again", dir, abs, dir)
		if !errors.Is(err, ErrRestoreIncomplete) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: CheckRestore = %v, want %q", name, err, want)
		}
		if _, err := CreateSnapshot(context.Background(), dir, filepath.Join(t.TempDir(), "s"), nil); !errors.Is(err, ErrRestoreIncomplete) {
			t.Errorf("%s: snapshot create = %v, want a refusal", name, err)
		}
		if old && step == "copied" {
			if got, _ := restoredContents(t, dir); fmt.Sprint(got) != oldContents {
				t.Errorf("%s: the old data changed before the copy was complete", name)
			}
		}
		if err := RestoreSnapshot(context.Background(), fx.snap, dir, false, nil); err == nil || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s: restore without --force = %v, want a refusal", name, err)
		}
		if err := RestoreSnapshot(context.Background(), fx.snap, dir, true, nil); err != nil {
			t.Fatalf("%s: the restore run again: %v", name, err)
		}
		checkRestored(t, name, dir, fx)
	}
	f("killed copying into a new directory", "copied", false)
	f("killed copying over old data", "copied", true)
	f("killed swapping over old data", "swapping", true)
}

// TestRestoreFails: a restore that fails while copying (cancelled, or the
// snapshot changed since it was verified) removes its copy and its marker
// and leaves the old data as it was; one that fails while swapping, or
// over an earlier unfinished restore, leaves the marker.
func TestRestoreFails(t *testing.T) {
	defer func() { restoreHook = nil }()
	fx := newRestoreFixture(t, 12)
	f := func(name string, earlier bool, hook func(cancel func(), snap string) func(string) error, wantErr string, wantMarked bool) {
		t.Helper()
		snap := filepath.Join(t.TempDir(), "snap")
		if err := linkOrCopyTree(context.Background(), fx.snap, snap); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		oldContents := oldDataDir(t, dir)
		if earlier {
			if err := writeRestoreMarker(dir, "/earlier/snap"); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		restoreHook = hook(cancel, snap)
		err := RestoreSnapshot(ctx, snap, dir, true, nil)
		restoreHook = nil
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: restore = %v, want an error containing %q", name, err, wantErr)
		}
		if marked := errors.Is(CheckRestore(dir), ErrRestoreIncomplete); marked != wantMarked {
			t.Errorf("%s: marked incomplete %v, want %v (%v)", name, marked, wantMarked, err)
		}
		if _, err := os.Stat(filepath.Join(dir, restoreStaging)); !wantMarked && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the staged copy was left behind (%v)", name, err)
		}
		if !wantMarked {
			if got, _ := restoredContents(t, dir); fmt.Sprint(got) != oldContents {
				t.Errorf("%s: the old data changed:\n got %v\nwant %v", name, got, oldContents)
			}
		}
		if err := RestoreSnapshot(context.Background(), fx.snap, dir, true, nil); err != nil {
			t.Fatalf("%s: the restore run again: %v", name, err)
		}
		checkRestored(t, name, dir, fx)
	}
	at := func(step string, do func(cancel func(), snap string) error) func(func(), string) func(string) error {
		return func(cancel func(), snap string) func(string) error {
			done := false
			return func(s string) error {
				if s != step || done {
					return nil
				}
				done = true
				return do(cancel, snap)
			}
		}
	}
	cancelled := at("copied", func(cancel func(), _ string) error { cancel(); return nil })
	f("cancelled while copying", false, cancelled, "context canceled", false)
	f("snapshot changed after verify", false, at("copied", func(_ func(), snap string) error {
		// A new file: the copy's files are hard links to the fixture's.
		ssts, _ := filepath.Glob(filepath.Join(snap, "pebble", "*.sst"))
		if err := os.WriteFile(snap+".tmp", []byte("changed"), 0o644); err != nil {
			return err
		}
		return os.Rename(snap+".tmp", ssts[len(ssts)-1])
	}), "changed since it was verified", false)
	f("failed while swapping", false, at("swapping", func(func(), string) error {
		return errors.New("injected")
	}), "injected", true)
	f("cancelled over an earlier unfinished restore", true, cancelled, "earlier restore that did not finish", true)
}

// TestSnapshotCopyHeedsCancel: copying and hashing look at ctx between
// files and every few MiB, so SIGINT/SIGTERM stops create, verify and
// restore within a chunk, not at the end of a large file. Before, none of
// them looked at it.
func TestSnapshotCopyHeedsCancel(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 3*copyChunk+1), 0o644); err != nil {
		t.Fatal(err)
	}
	fx := newRestoreFixture(t, 13)
	f := func(name string, okChecks int, run func(ctx context.Context) error) {
		t.Helper()
		ctx := &cancelAfter{Context: context.Background(), ok: okChecks}
		if err := run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
		if ctx.calls > okChecks+1 {
			t.Errorf("%s: went on for %d looks at ctx after it was done", name, ctx.calls-okChecks-1)
		}
	}
	// One chunk goes through, then the look before the second stops it.
	f("copyFile", 1, func(ctx context.Context) error {
		dst := filepath.Join(t.TempDir(), "copy")
		_, err := copyFile(ctx, big, dst, nil, nil)
		if fi, serr := os.Stat(dst); serr != nil || fi.Size() != copyChunk {
			t.Errorf("copyFile: stopped at %v bytes (%v), want %d", fi.Size(), serr, copyChunk)
		}
		return err
	})
	f("hashFile", 1, func(ctx context.Context) error { _, _, err := hashFile(ctx, big); return err })
	f("hashTree", 0, func(ctx context.Context) error { _, err := hashTree(ctx, dir, nil); return err })
	f("verify", 0, func(ctx context.Context) error { _, err := VerifySnapshot(ctx, fx.snap, nil); return err })
	f("create", 0, func(ctx context.Context) error {
		src := t.TempDir()
		fillDataDir(t, src, 14)
		_, err := CreateSnapshot(ctx, src, filepath.Join(t.TempDir(), "snap"), nil)
		return err
	})
	restored := t.TempDir()
	f("restore", 0, func(ctx context.Context) error { return RestoreSnapshot(ctx, fx.snap, restored, false, nil) })
	if ents, _ := os.ReadDir(restored); len(ents) != 0 {
		t.Errorf("a restore stopped before it copied anything left %d entries", len(ents))
	}
}

// cancelAfter is a context whose Err is nil for its first ok calls and
// context.Canceled after: it stops an operation at a chosen look.
type cancelAfter struct {
	context.Context
	ok, calls int
}

func (c *cancelAfter) Err() error {
	if c.calls++; c.calls > c.ok {
		return context.Canceled
	}
	return nil
}
