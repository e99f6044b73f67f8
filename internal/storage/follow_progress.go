package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"petrel/internal/journal"
)

// A server whose storer runs in another process (`petrel storer`) cannot
// ask that storer how far it has got, yet --backlog-limit needs the bytes
// of journal it has not applied. So the storer publishes, every poll, the
// sequence it has applied and where the record after it starts: a
// journal.Position, which names the same place in the writer's journal
// and in the follower's (TestDirJournalBytesAfter). The server measures
// from there to its journal's durable end with journal.BytesAfterer, as it
// does for a storer of its own: reading one small file, no scan.
//
// The file is advisory and written without fsync. It holds the applied
// sequence, not the durable one (storer.applied): measuring from the
// durable one would count up to a flush's worth (--flush-bytes, 64 MiB)
// of applied records, and refuse writes with a healthy backend under a
// smaller limit. A storer that stops leaves its last progress behind, so
// the backlog measured from it grows with every write and the limit still
// holds; one that crashed before Pebble flushed may have applied less than
// it published, by at most that flush, until it runs again.

// StorerProgress is what a storer in another process publishes.
type StorerProgress struct {
	Applied uint64           // applied to the backend
	Pos     journal.Position // where the record after Applied starts
}

const (
	progressFile   = "storer.progress"
	progressFormat = "petrel-storer-progress/1"
)

// WriteStorerProgress replaces dataDir's storer.progress with p, atomically.
func WriteStorerProgress(dataDir string, p StorerProgress) error {
	path := filepath.Join(dataDir, progressFile)
	tmp := path + ".tmp"
	body := fmt.Sprintf("%s %d %d %d\n", progressFormat, p.Applied, p.Pos.Segment, p.Pos.Offset)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("storage: storer progress: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("storage: storer progress: %w", err)
	}
	return nil
}

// ReadStorerProgress returns what the storer of dataDir last published,
// and false when nothing has been.
func ReadStorerProgress(dataDir string) (StorerProgress, bool, error) {
	path := filepath.Join(dataDir, progressFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return StorerProgress{}, false, nil
	}
	if err != nil {
		return StorerProgress{}, false, fmt.Errorf("storage: storer progress: %w", err)
	}
	var p StorerProgress
	var format string
	if _, err := fmt.Sscanf(string(b), "%s %d %d %d\n", &format, &p.Applied, &p.Pos.Segment, &p.Pos.Offset); err != nil || format != progressFormat {
		return StorerProgress{}, false, fmt.Errorf("storage: storer progress %s: %q is not %s", path, b, progressFormat)
	}
	return p, true, nil
}

// RemoveStorerProgress removes dataDir's storer.progress. A storer that
// takes over the store (`petrel storer` at start, a server running its
// own, a restore) removes what an earlier one published: after a restore,
// or a journal restarted by --repair, its sequence and position name a
// store and a journal that are gone, and a server beside the new storer
// would measure its backlog from there until the first publish.
func RemoveStorerProgress(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, progressFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: storer progress: %w", err)
	}
	return nil
}

// PublishProgress writes s's progress to dataDir's storer.progress every
// interval while it changes, until ctx is done, and once more then.
func PublishProgress(ctx context.Context, dataDir string, s *Storer, every time.Duration, logf Logf) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var (
		last      StorerProgress
		published bool
		errLog    logEvery
	)
	publish := func() {
		p, ok := s.Progress()
		if !ok || (published && p == last) {
			return
		}
		if err := WriteStorerProgress(dataDir, p); err != nil {
			if ok, n := errLog.allow(time.Now()); ok {
				logf("storer: %v (the server's --backlog-limit measures from the last progress written)%s", err, suppressed(n))
			}
			return
		}
		last, published = p, true
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		publish()
		select {
		case <-ctx.Done():
			publish()
			return
		case <-t.C:
		}
	}
}
