package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A data directory holds everything a durable Petrel keeps:
//
//	DIR/journal/         journal segment files (internal/journal)
//	DIR/pebble/          the embedded LSM (Pebble), applied from the journal
//	DIR/journal.lock     held by the process that writes the journal (the server)
//	DIR/storer.lock      held by the process that applies the journal to DIR/pebble
//	DIR/storer.applied   the sequence the storer holds durably, for a journal
//	                     writer in another process to truncate below
//
// The two locks are separate so that the storer can run in the server or as
// its own process (`petrel storer`), as MemoryDB builds its snapshots off
// the serving box: the server always takes journal.lock, and whoever applies
// takes storer.lock. Pebble keeps its own LOCK file as well.
const (
	journalSub  = "journal"
	pebbleSub   = "pebble"
	journalLock = "journal.lock"
	storerLock  = "storer.lock"
	appliedMark = "storer.applied"
)

// JournalDir is where a data directory keeps its journal segments.
func JournalDir(dataDir string) string { return filepath.Join(dataDir, journalSub) }

// PebbleDir is where a data directory keeps its embedded LSM.
func PebbleDir(dataDir string) string { return filepath.Join(dataDir, pebbleSub) }

// ErrLocked means another process holds a data directory lock.
var ErrLocked = errors.New("data directory is locked by another process")

// Lock is an advisory lock (flock) on a file of a data directory. The
// kernel releases it when the process dies, so a crash never leaves a stale
// lock behind; the file keeps the holder's pid for error messages.
type Lock struct {
	f *os.File
}

// LockJournal takes the journal writer's lock of dataDir, without waiting.
func LockJournal(dataDir string) (*Lock, error) { return lockFile(dataDir, journalLock) }

// LockStorer takes the storer's lock of dataDir, without waiting.
func LockStorer(dataDir string) (*Lock, error) { return lockFile(dataDir, storerLock) }

func lockFile(dataDir, name string) (*Lock, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: lock: %w", err)
	}
	path := filepath.Join(dataDir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(b[:n]))
			return nil, fmt.Errorf("%s (pid %s): %w", path, holder, ErrLocked)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

// WriteAppliedMark records, atomically, that the storer holds every record
// up to seq durably, so that a journal writer in another process may
// truncate below seq+1 (see ReadAppliedMark).
func WriteAppliedMark(dataDir string, seq uint64) error {
	path := filepath.Join(dataDir, appliedMark)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("storage: applied mark: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("storage: applied mark: %w", err)
	}
	return nil
}

// ReadAppliedMark returns the sequence an external storer holds durably
// (0 when none has written one).
func ReadAppliedMark(dataDir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, appliedMark))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: applied mark: %w", err)
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("storage: applied mark %q: %w", b, err)
	}
	return seq, nil
}
