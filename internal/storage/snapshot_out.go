package storage

import (
	"fmt"
	"os"
	"path/filepath"
)

// A snapshot create that fails or is stopped (a full disk, SIGINT, a store
// that will not flush) must not leave its partial output behind: verify
// rejects it, and a second create into the same path refuses a directory
// that is not empty. So the output directory is removed again if create
// made it, with any parents it made, and an output directory that existed
// (empty: create refuses any other) is emptied of what create wrote. A
// second signal, a SIGKILL or a power cut still leaves the partial copy;
// it has no manifest.json (written last), and must be removed by hand.

// snapshotOut is the output directory of a snapshot being written.
type snapshotOut struct {
	dir  string
	made string          // the topmost directory MkdirAll made; "" when dir existed
	kept map[string]bool // what an existing dir held (emptyOrMissing allows lock files)
}

// makeSnapshotOut checks that dir is missing or empty and creates it.
func makeSnapshotOut(dir string) (*snapshotOut, error) {
	if err := emptyOrMissing(dir); err != nil {
		return nil, fmt.Errorf("snapshot: output %w", err)
	}
	o := &snapshotOut{dir: dir, kept: map[string]bool{}}
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		o.made = p
	}
	if o.made == "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("snapshot: output: %w", err)
		}
		for _, e := range ents {
			o.kept[e.Name()] = true
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: output: %w", err)
	}
	return o, nil
}

// abandon removes what a failed create wrote, and says what it did, for
// the end of the error.
func (o *snapshotOut) abandon() string {
	if o.made == "" {
		ents, err := os.ReadDir(o.dir)
		for i := 0; err == nil && i < len(ents); i++ {
			if n := ents[i].Name(); !o.kept[n] {
				err = os.RemoveAll(filepath.Join(o.dir, n))
			}
		}
		if err != nil {
			return fmt.Sprintf("; removing the partial snapshot from %s failed (%v): remove its contents before trying again", o.dir, err)
		}
		return fmt.Sprintf("; removed the partial snapshot from %s, which existed before and is left empty", o.dir)
	}
	if err := os.RemoveAll(o.dir); err != nil {
		return fmt.Sprintf("; removing the partial snapshot %s failed (%v): remove it before trying again", o.dir, err)
	}
	// The parents MkdirAll made, unless something else has been put in them.
	for p := filepath.Clean(o.dir); p != o.made; {
		p = filepath.Dir(p)
		if os.Remove(p) != nil {
			break
		}
	}
	return fmt.Sprintf("; removed the partial snapshot %s", o.dir)
}
