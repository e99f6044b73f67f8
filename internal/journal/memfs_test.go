package journal

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// memFS is an in-memory FS, so that recovery tests can run thousands of
// cases without waiting on a shared disk. Syncs are no-ops.
type memFS struct {
	mu    sync.Mutex
	files map[string]*memFile
}

func newMemFS() *memFS { return &memFS{files: map[string]*memFile{}} }

type memFile struct {
	mu      sync.Mutex
	data    []byte
	removed bool // unlinked: open handles still read and write it
}

type memHandle struct{ f *memFile }

func (m *memFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; ok {
		return nil, os.ErrExist
	}
	f := &memFile{}
	m.files[name] = f
	return memHandle{f}, nil
}

func (m *memFS) open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	return memHandle{f}, nil
}

func (m *memFS) OpenRW(name string) (File, error) { return m.open(name) }
func (m *memFS) Open(name string) (File, error)   { return m.open(name) }

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return os.ErrNotExist
	}
	f.mu.Lock()
	f.removed = true
	f.mu.Unlock()
	delete(m.files, name)
	return nil
}

// removeAll removes every file under dir, as rm -rf does.
func (m *memFS) removeAll(dir string) {
	m.mu.Lock()
	var names []string
	for n := range m.files {
		if rel, err := filepath.Rel(dir, n); err == nil && !strings.HasPrefix(rel, "..") {
			names = append(names, n)
		}
	}
	m.mu.Unlock()
	for _, n := range names {
		m.Remove(n)
	}
}

func (m *memFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for n := range m.files {
		if filepath.Dir(n) == filepath.Clean(dir) {
			names = append(names, filepath.Base(n))
		}
	}
	return names, nil
}

func (m *memFS) MkdirAll(string) error { return nil }
func (m *memFS) SyncDir(string) error  { return nil }

func (h memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(h.f.data)) {
		h.f.data = append(h.f.data, make([]byte, end-int64(len(h.f.data)))...)
	}
	return copy(h.f.data[off:], p), nil
}

func (h memHandle) Truncate(size int64) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if size < int64(len(h.f.data)) {
		h.f.data = h.f.data[:size]
	} else {
		h.f.data = append(h.f.data, make([]byte, size-int64(len(h.f.data)))...)
	}
	return nil
}

func (h memHandle) Size() (int64, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return int64(len(h.f.data)), nil
}

func (h memHandle) Removed() (bool, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.removed, nil
}

func (memHandle) Datasync() error { return nil }
func (memHandle) Close() error    { return nil }
