package journal

import (
	"os"
	"syscall"
)

// datasync uses fdatasync(2) rather than (*os.File).Sync's fsync(2). The
// journal only appends, so the metadata that matters (the file size) is
// flushed by fdatasync too, while fsync would also force a journal commit
// for the modification time on every group. The standard library's syscall
// package has Fdatasync on Linux, so no dependency is needed.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
