package journal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// Resume clears a failed state, but only when the journal is provably
// intact: it reopens the active segment, re-reads and verifies the last
// acknowledged group (its CRCs and that it ends at DurableSeq), truncates
// whatever an unacknowledged group left behind, and syncs. Appending then
// continues at DurableSeq()+1, so the sequences handed out for records that
// were never acknowledged are handed out again: the caller must have
// treated every such sequence as failed (they got the error from
// WaitDurable), must not wait on them again, and must have undone their
// effects (Lost lists them; a successful Resume clears the list).
//
// In ModeAsync a failed fdatasync cannot be resumed from: the kernel may
// have dropped acknowledged pages it failed to write, and re-reading them
// would only read the page cache. Nor can a journal whose active segment
// was removed from disk (ErrRemoved): its records are gone with the file.
// Reopen the journal instead.
func (j *Local) Resume() error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	failed, closing := j.failed, j.closing
	seg := j.segs[len(j.segs)-1]
	from, durable := j.groupStart, j.durable.Load()
	syncFailed := j.syncFailed
	j.mu.Unlock()
	switch {
	case failed == nil:
		return nil
	case closing:
		return ErrClosed
	case syncFailed && j.opts.Mode == ModeAsync:
		return fmt.Errorf("journal: cannot resume after a failed fdatasync in async mode: %w", failed)
	case errors.Is(failed, ErrRemoved):
		return fmt.Errorf("journal: cannot resume: %w; what was written to it cannot be read back", failed)
	}
	if j.active != nil {
		// Removed after some other failure: reopening by name would find
		// nothing, or a new file that is not the one written.
		if err := j.checkLinked(); err != nil {
			return fmt.Errorf("journal: cannot resume: %w", err)
		}
	}
	if err := j.probe(); err != nil {
		return fmt.Errorf("journal: resume: %w", err)
	}
	name := j.path(seg.first)
	if j.active != nil {
		j.active.Close()
		j.active = nil
	}
	f, err := j.fs.OpenRW(name)
	if err != nil {
		return fmt.Errorf("journal: resume: open %s: %w", name, err)
	}
	if err := verifyTail(f, seg.first, from, seg.size, durable); err != nil {
		f.Close()
		return fmt.Errorf("journal: resume: %s: %w", name, err)
	}
	if err := f.Truncate(seg.size); err != nil {
		f.Close()
		return fmt.Errorf("journal: resume: truncate %s at %d: %w", name, seg.size, err)
	}
	if err := f.Datasync(); err != nil {
		f.Close()
		return fmt.Errorf("journal: resume: fdatasync %s: %w", name, err)
	}
	j.active = f
	j.writeOff = seg.size
	j.zeroEnd = seg.size
	j.markFirst = 0
	j.lastSync = time.Now()
	j.mu.Lock()
	j.failed, j.syncFailed, j.lost = nil, false, nil
	j.nextSeq = durable + 1
	j.synced = durable
	j.mu.Unlock()
	return nil
}

// verifyTail checks the segment header and the records in [from, end): all
// intact, in sequence, the last one being last (or none, when from == end,
// in which case the segment must hold nothing before first).
func verifyTail(f File, first uint64, from, end int64, last uint64) error {
	h := make([]byte, headerSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if err := checkHeader(h, first); err != nil {
		return err
	}
	if from == end {
		if from == headerSize && last != first-1 {
			return fmt.Errorf("empty segment, but sequence %d is acknowledged", last)
		}
		return nil
	}
	sc := newScanner(f, from, end, make([]byte, 64<<10))
	var rec Record
	var seq uint64
	for {
		at, err := sc.next(&rec)
		if err != nil {
			if sc.pos() == end && seq == last {
				return nil
			}
			return fmt.Errorf("at offset %d (last sequence %d, want %d): %w", at, seq, last, err)
		}
		if seq != 0 && rec.Seq != seq+1 {
			return fmt.Errorf("at offset %d: sequence %d after %d: %w", at, rec.Seq, seq, ErrCorrupt)
		}
		seq = rec.Seq
	}
}

// probeName is the file probe writes; segment listing ignores it.
const probeName = "resume-probe.tmp"

// probe checks that the disk takes new data again: it writes zeroChunk
// bytes to a new file, syncs and removes it. Without it, a resume on a
// disk that is still full would succeed (truncating the failed group frees
// about what the journal's own tail needs again), and the next client's
// write would fail and lose its connection.
func (j *Local) probe() error {
	name := filepath.Join(j.opts.Dir, probeName)
	_ = j.fs.Remove(name) // left by a crash during an earlier probe
	f, err := j.fs.Create(name)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer j.fs.Remove(name)
	n, err := f.WriteAt(zeros[:], 0)
	if err == nil && n < len(zeros) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("probe: write %d bytes to %s: %w", len(zeros), name, err)
	}
	return nil
}
