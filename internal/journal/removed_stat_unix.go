//go:build unix

package journal

import (
	"fmt"
	"os"
	"syscall"
)

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
	return st.Nlink == 0, nil
}
