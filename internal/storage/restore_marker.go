package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A restore that dies midway (a full disk, SIGKILL, a power cut) must not
// leave a data directory that a server would start on as if it were whole:
// orphan sstables without a MANIFEST make Pebble create a new, empty store,
// and a cut journal is recovered as a short one. So a restore first writes
// DIR/restore.incomplete (fsync'ed, naming the snapshot), and removes it
// only once the new data is in place; CheckRestore, which the server, the
// storer and snapshot create call, refuses a directory that holds it.
//
// The snapshot is copied into DIR/restore.staging and renamed into place
// only once every file is copied, synced and matches the manifest. Until
// then the data directory is untouched, so with --force a failed copy
// leaves the old data as it was (and the restore removes its marker
// again); the old pebble/ and journal/ are moved to DIR/restore.old at the
// swap and deleted after it. The price is room for both copies at once.
const (
	restoreMarker  = "restore.incomplete"
	restoreStaging = "restore.staging"
	restoreOld     = "restore.old"
)

// restoreHook, set by tests, runs at each step of a restore ("copied"
// after each file, "swapping" with the old data moved aside), so that they
// can fail or kill the restore there.
var restoreHook func(step string) error

func restoreStep(step string) error {
	if restoreHook == nil {
		return nil
	}
	return restoreHook(step)
}

// ErrRestoreIncomplete is what CheckRestore's error matches (errors.Is).
var ErrRestoreIncomplete = errors.New("a snapshot restore did not finish")

type restoreIncompleteError struct {
	dataDir, snap string
}

func (e *restoreIncompleteError) Error() string {
	return fmt.Sprintf("%s: a snapshot restore into %s did not finish, and its data may be incomplete; "+
		"run `petrel snapshot restore %s --data-dir %s --force` again",
		filepath.Join(e.dataDir, restoreMarker), e.dataDir, shellQuote(e.snap), shellQuote(e.dataDir))
}

func (e *restoreIncompleteError) Is(target error) bool { return target == ErrRestoreIncomplete }

// CheckRestore returns an error (matching ErrRestoreIncomplete) when a
// snapshot restore into dataDir did not finish, nil otherwise. A restore
// holds both of dataDir's locks while it runs, so a caller that holds
// either one knows the restore is not merely still running.
func CheckRestore(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, restoreMarker))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	e := &restoreIncompleteError{dataDir: dataDir, snap: "SNAPDIR"}
	if err != nil {
		// Unreadable is not absent: refuse all the same.
		return fmt.Errorf("%w (reading the marker: %v)", e, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "snapshot: "); ok && s != "" {
			e.snap = s
		}
	}
	return e
}

func writeRestoreMarker(dataDir, snap string) error {
	body := fmt.Sprintf("a petrel snapshot restore into this directory did not finish: its data may be incomplete\n"+
		"snapshot: %s\nstarted: %s\npid: %d\n", snap, time.Now().UTC().Format(time.RFC3339), os.Getpid())
	if err := writeFileSync(filepath.Join(dataDir, restoreMarker), []byte(body)); err != nil {
		return fmt.Errorf("write the restore marker: %w", err)
	}
	return syncDir(dataDir)
}

func removeRestoreMarker(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, restoreMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(dataDir)
}

// stageSnapshot copies the files of a verified snapshot into staging,
// hashing them as they are copied: what lands is what was verified, even
// if the snapshot changed since. A snapshot without a journal gets an empty
// segment at applied+1, so that new writes get sequences above every
// stored version.
func stageSnapshot(ctx context.Context, snapDir, staging string, m *SnapshotManifest, logf Logf) error {
	dirs := map[string]bool{staging: true, filepath.Join(staging, pebbleSub): true, filepath.Join(staging, journalSub): true}
	for d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	logf("copying %d files (%d MiB) into %s", len(m.Files), total>>20, staging)
	for _, f := range m.Files {
		dst := filepath.Join(staging, filepath.FromSlash(f.Path))
		if !dirs[filepath.Dir(dst)] {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			dirs[filepath.Dir(dst)] = true
		}
		h := sha256.New()
		n, err := copyFile(ctx, filepath.Join(snapDir, filepath.FromSlash(f.Path)), dst, logf, h)
		if err != nil {
			return err
		}
		if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
			return fmt.Errorf("snapshot %s: %s changed since it was verified (size %d sha256 %s, manifest says %d %s)",
				snapDir, f.Path, n, sum, f.Size, f.SHA256)
		}
		if err := restoreStep("copied"); err != nil {
			return err
		}
	}
	if m.JournalFirst == 0 && m.AppliedSeq > 0 {
		name := filepath.Join(staging, journalSub, fmt.Sprintf("%020d%s", m.AppliedSeq+1, segSuffix))
		if err := writeFileSync(name, segmentHeader(m.AppliedSeq+1)); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// swapIn replaces dataDir's store and journal with the staged ones. The
// old ones are moved aside, not deleted, until the new ones are in place
// and the directory is synced.
func swapIn(dataDir, staging string) error {
	old := filepath.Join(dataDir, restoreOld)
	if err := os.Mkdir(old, 0o755); err != nil {
		return err
	}
	for _, name := range []string{pebbleSub, journalSub, appliedMark} {
		if err := os.Rename(filepath.Join(dataDir, name), filepath.Join(old, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := restoreStep("swapping"); err != nil {
		return err
	}
	for _, name := range []string{pebbleSub, journalSub} {
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(dataDir, name)); err != nil {
			return err
		}
	}
	return syncDir(dataDir)
}

// abandonRestore undoes a restore that failed before swapIn, and says in
// what state it leaves dataDir. The data directory proper was not touched,
// so the marker goes too, unless an earlier restore left it there.
func abandonRestore(dataDir string, earlier bool) string {
	if err := os.RemoveAll(filepath.Join(dataDir, restoreStaging)); err != nil {
		return fmt.Sprintf("; cleaning up failed (%v): %s stays marked incomplete", err, dataDir)
	}
	if earlier {
		return fmt.Sprintf("; %s stays marked incomplete by the earlier restore that did not finish", dataDir)
	}
	if err := removeRestoreMarker(dataDir); err != nil {
		return fmt.Sprintf("; removing %s failed (%v): %s stays marked incomplete", restoreMarker, err, dataDir)
	}
	return fmt.Sprintf("; %s was left as it was", dataDir)
}

// shellQuote quotes s for a command line shown to a person, when needed.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
