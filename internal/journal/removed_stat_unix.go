//go:build unix

package journal

import (
	"fmt"
	"os"
	"syscall"
)

// confirmRemoved checks a link count of 0 against the path: a filesystem
// that reports 0 for a file that is there (some FUSE ones) would
// otherwise fail the journal for good. The file is gone if its path is
// missing or names another file. Only a count of 0 pays for this stat.
func confirmRemoved(f *os.File) bool {
	pfi, err := os.Stat(f.Name())
	if err != nil {
		return true // missing, or the path cannot be read: the count stands
	}
	ffi, err := f.Stat()
	return err != nil || !os.SameFile(pfi, ffi)
}

// fstatRemoved reads the link count with fstat(2).
func fstatRemoved(f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, fmt.Errorf("stat %s: no link count (%T)", f.Name(), fi.Sys())
	}
	return st.Nlink == 0 && confirmRemoved(f), nil
}
