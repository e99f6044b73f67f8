package journal

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// run is the background half of the writer (the other half is the
// waiters, commit.go): it writes groups that nobody waits for, syncs on an
// interval in ModeAsync, and writes everything still queued on Close.
func (j *Local) run() {
	defer close(j.done)
	var tick <-chan time.Time
	if j.opts.Mode == ModeAsync {
		t := time.NewTicker(j.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-j.wake:
		case <-tick:
			j.syncAsync()
		case <-sweep.C:
			gomaxprocs.Store(int32(runtime.GOMAXPROCS(0)))
			j.sweep()
		}
		j.mu.Lock()
		if j.closing {
			for {
				if j.writing {
					j.durCond.Wait()
					continue
				}
				if len(j.batches) == 0 {
					break
				}
				j.lead(j.batches[len(j.batches)-1].last)
			}
			j.mu.Unlock()
			if j.opts.Mode == ModeAsync {
				j.syncAsync()
			}
			return
		}
		j.mu.Unlock()
	}
}

// writeGroup writes and (when due) syncs one group, then acknowledges it.
// syncErr says whether the error came from fdatasync.
func (j *Local) writeGroup(b *batch, closing bool) (syncErr bool, err error) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.active == nil {
		return false, fmt.Errorf("journal: no active segment (after a failed roll)")
	}
	sync := j.opts.Mode == ModeSync || closing || time.Since(j.lastSync) >= j.opts.SyncInterval
	if j.writeOff > headerSize && j.writeOff+int64(len(b.buf)) > j.opts.SegmentSize {
		if err := j.roll(b.first); err != nil {
			return false, err
		}
	}
	if j.markFirst == 0 {
		j.markFirst = b.first
	}
	appended := len(b.buf) // what Append counted as pending
	if sync {
		b.buf = markGroupEnd(b.buf, b.lastOff, j.markFirst)
	}
	start := j.writeOff
	n, err := j.active.WriteAt(b.buf, start)
	if err == nil && n < len(b.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return false, fmt.Errorf("journal: write %s at offset %d: %w", segName(j.activeFirst()), start, err)
	}
	j.writeOff += int64(len(b.buf))
	j.zeroAhead()
	var syncNanos uint64
	if sync {
		t0 := time.Now()
		if err := j.active.Datasync(); err != nil {
			return true, fmt.Errorf("journal: fdatasync %s: %w", segName(j.activeFirst()), err)
		}
		j.lastSync = time.Now()
		syncNanos = uint64(j.lastSync.Sub(t0))
		j.markFirst = 0
	}
	// In either mode, never acknowledge a group that only an unlinked
	// file holds (removed.go).
	if err := j.checkLinked(); err != nil {
		return false, err
	}

	j.mu.Lock()
	if j.failed != nil {
		// Resume cannot have run (we hold wmu), so this is impossible;
		// refuse to acknowledge anyway.
		j.mu.Unlock()
		return false, j.failed
	}
	j.durable.Store(b.last)
	close(b.rv.done)
	j.inflight = nil
	if sync {
		j.synced = b.last
		j.st.Syncs++
		j.st.SyncNanos += syncNanos
		j.st.SyncMaxNanos = max(j.st.SyncMaxNanos, syncNanos)
	}
	j.segs[len(j.segs)-1].size = j.writeOff
	j.groupStart = start
	j.st.Records += b.last - b.first + 1
	j.lastGroup = b.last - b.first + 1
	j.st.Groups++
	j.st.Bytes += uint64(len(b.buf))
	j.pending -= appended
	if cap(b.buf) <= 2*j.opts.MaxGroupBytes+64<<10 { // not one huge record's
		j.free = append(j.free, b)
	}
	j.durCond.Broadcast()
	j.spaceCond.Broadcast()
	j.mu.Unlock()
	return false, nil
}

func (j *Local) activeFirst() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.segs[len(j.segs)-1].first
}

// roll starts a new segment whose first record is first. The new file is
// made durable (header, file, directory entry) before the old one is let
// go, so that every segment but the last is always complete.
func (j *Local) roll(first uint64) error {
	if j.markFirst != 0 {
		// ModeAsync with unsynced data: finish the old segment first.
		if err := j.active.Datasync(); err != nil {
			return fmt.Errorf("journal: fdatasync %s: %w", segName(j.activeFirst()), err)
		}
		j.lastSync = time.Now()
		j.markFirst = 0
		j.mu.Lock()
		j.synced = j.durable.Load()
		j.mu.Unlock()
	}
	// Removed since its last group was checked: do not go on in a new
	// file (in a journal directory made again) past records that are gone.
	if err := j.checkLinked(); err != nil {
		return err
	}
	f, err := j.createSegment(first)
	if err != nil {
		return err
	}
	if err := j.active.Close(); err != nil {
		j.opts.Logf("journal: close %s: %v", segName(j.activeFirst()), err)
	}
	j.active = f
	j.writeOff = headerSize
	j.zeroEnd = headerSize
	j.groupStart = headerSize
	j.mu.Lock()
	j.segs = append(j.segs, segment{first: first, size: headerSize})
	j.mu.Unlock()
	return nil
}

// createSegment creates a segment file with its header, durably.
func (j *Local) createSegment(first uint64) (File, error) {
	name := j.path(first)
	f, err := j.fs.Create(name)
	if err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", name, err)
	}
	err = writeFull(f, encodeHeader(first), 0)
	if err == nil {
		err = f.Datasync()
	}
	if err == nil {
		err = j.fs.SyncDir(j.opts.Dir)
	}
	if err != nil {
		f.Close()
		j.fs.Remove(name)
		return nil, fmt.Errorf("journal: create %s: %w", name, err)
	}
	return f, nil
}

func writeFull(f File, p []byte, off int64) error {
	n, err := f.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// syncAsync is ModeAsync's periodic fdatasync of written groups.
func (j *Local) syncAsync() {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.markFirst == 0 || j.active == nil || j.Err() != nil {
		return
	}
	t0 := time.Now()
	if err := j.active.Datasync(); err != nil {
		j.fail(fmt.Errorf("journal: fdatasync %s: %w", segName(j.activeFirst()), err), true)
		return
	}
	j.lastSync = time.Now()
	j.markFirst = 0
	if err := j.checkLinked(); err != nil {
		// Every group was checked before it was acknowledged, so the
		// file went since: fail now, for the log and the metric, rather
		// than at the next write.
		j.fail(err, false)
		return
	}
	d := uint64(j.lastSync.Sub(t0))
	j.mu.Lock()
	j.synced = j.durable.Load()
	j.st.Syncs++
	j.st.SyncNanos += d
	j.st.SyncMaxNanos = max(j.st.SyncMaxNanos, d)
	j.mu.Unlock()
}
