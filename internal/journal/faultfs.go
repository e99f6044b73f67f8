package journal

import "sync"

// FaultFS wraps an FS and injects disk faults. It exists for tests (this
// package's and, later, the server's): production code never uses it. A
// fault armed with FailWrites or FailSyncs fires on the matching operation
// of any file opened through the FaultFS, after the given number of
// operations have succeeded, and keeps firing until Heal.
type FaultFS struct {
	FS

	mu           sync.Mutex
	writeErr     error
	writeAfter   int
	writePartial int
	syncErr      error
	syncAfter    int
	writes       int // successful WriteAt calls since the fault was armed
	syncs        int
}

// NewFaultFS wraps fs (OSFS when nil).
func NewFaultFS(fs FS) *FaultFS {
	if fs == nil {
		fs = OSFS{}
	}
	return &FaultFS{FS: fs}
}

// FailWrites makes every WriteAt after the next `after` ones write only
// `partial` bytes (a torn write) and return err; syscall.ENOSPC simulates a
// full disk.
func (f *FaultFS) FailWrites(after, partial int, err error) {
	f.mu.Lock()
	f.writeErr, f.writeAfter, f.writePartial, f.writes = err, after, partial, 0
	f.mu.Unlock()
}

// FailSyncs makes every Datasync after the next `after` ones return err
// without syncing.
func (f *FaultFS) FailSyncs(after int, err error) {
	f.mu.Lock()
	f.syncErr, f.syncAfter, f.syncs = err, after, 0
	f.mu.Unlock()
}

// Heal disarms every fault.
func (f *FaultFS) Heal() {
	f.mu.Lock()
	f.writeErr, f.syncErr = nil, nil
	f.mu.Unlock()
}

func (f *FaultFS) wrap(fl File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: fl, fs: f}, nil
}

func (f *FaultFS) Create(name string) (File, error) { return f.wrap(f.FS.Create(name)) }
func (f *FaultFS) OpenRW(name string) (File, error) { return f.wrap(f.FS.OpenRW(name)) }
func (f *FaultFS) Open(name string) (File, error)   { return f.wrap(f.FS.Open(name)) }

type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	fs := f.fs
	fs.mu.Lock()
	err, partial := fs.writeErr, fs.writePartial
	if err != nil && fs.writes < fs.writeAfter {
		err = nil
	}
	if err == nil {
		fs.writes++
	}
	fs.mu.Unlock()
	if err == nil {
		return f.File.WriteAt(p, off)
	}
	if partial > len(p) {
		partial = len(p)
	}
	if partial > 0 {
		n, werr := f.File.WriteAt(p[:partial], off)
		if werr != nil {
			return n, werr
		}
	}
	return partial, err
}

func (f *faultFile) Datasync() error {
	fs := f.fs
	fs.mu.Lock()
	err := fs.syncErr
	if err != nil && fs.syncs < fs.syncAfter {
		err = nil
	}
	if err == nil {
		fs.syncs++
	}
	fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Datasync()
}

// Removed passes the link count through: a test removes the journal's
// files for real (the underlying FS sees it), so there is no fault to arm.
func (f *faultFile) Removed() (bool, error) { return f.File.Removed() }
