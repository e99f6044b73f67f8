//go:build unix

package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConfirmRemoved: a link count of 0 is believed only when the path is
// gone or names another file, not when the file is still there.
func TestConfirmRemoved(t *testing.T) {
	name := filepath.Join(t.TempDir(), "seg")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if confirmRemoved(f) {
		t.Fatal("a file still at its path confirmed removed")
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if !confirmRemoved(f) {
		t.Fatal("a removed file not confirmed removed")
	}
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !confirmRemoved(f) {
		t.Fatal("a file replaced by another at its path not confirmed removed")
	}
}
