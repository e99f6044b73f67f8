package server

import (
	"fmt"
	"net"
	"os"
)

// listenUnix binds a unix stream socket at path with the permission bits of
// mask (memcached -a). A stale socket left by a crashed server is removed
// first, as memcached does; any other kind of file is left alone and the
// bind fails.
func listenUnix(path string, mask uint32) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale unix socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	// memcached narrows the umask around bind; chmod afterwards gives the
	// same mode without touching the process-wide umask.
	if err := os.Chmod(path, os.FileMode(mask&0o777)); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod unix socket %s: %w", path, err)
	}
	return ln, nil
}
