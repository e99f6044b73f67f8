package journal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FS is the file layer under the journal: the few operations it needs, so
// that tests can inject disk faults (FaultFS) without touching a real disk's
// behaviour. OSFS is the real one.
type FS interface {
	// Create makes a new file for reading and writing; it fails if the
	// file exists.
	Create(name string) (File, error)
	// OpenRW opens an existing file for reading and writing.
	OpenRW(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	Remove(name string) error
	// List returns the names (not paths) of the entries in dir.
	List(dir string) ([]string, error)
	MkdirAll(dir string) error
	// SyncDir makes the creation and removal of entries in dir durable.
	SyncDir(dir string) error
}

// File is an open journal file. The journal only ever writes with WriteAt
// at an offset it tracks, so truncating and rewriting a tail is exact.
type File interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	// Datasync flushes the file's data (and the metadata needed to read it
	// back, such as its size) to stable storage.
	Datasync() error
	Size() (int64, error)
	// Removed reports whether the file has been unlinked (its link count
	// is 0: the file, or its directory, was deleted while it was open).
	// Writes to such a file succeed, and even sync, but nothing can read
	// them once it is closed.
	Removed() (bool, error)
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

type osFile struct{ *os.File }

func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) OpenRW(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) Remove(name string) error { return os.Remove(name) }

func (OSFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", filepath.Clean(dir), err)
	}
	return nil
}

func (f osFile) Datasync() error { return datasync(f.File) }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
