package journal

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// A journal removed under a running writer (`rm -rf DIR/journal`) does not
// make writes fail: the active segment's file descriptor stays open, and
// writes to the unlinked file succeed and even sync. Without a check, every
// group acknowledged from then on would vanish with the process, and the
// next start would find a journal that ends below what the storage backend
// holds. So the writer checks the active segment's link count before it
// acknowledges a group, before it lets a segment go at a roll, and after
// the async mode's periodic sync (checkLinked), and a removed segment fails
// the journal for good: Resume refuses, since what was written to the
// unlinked file can never be read back and verified. Writes acknowledged
// before the removal are beyond its help; the caller holds what it applied
// elsewhere (Restart).

// ErrRemoved is what the failure of a journal whose active segment was
// removed from disk matches (errors.Is).
var ErrRemoved = errors.New("journal segment removed from disk")

type removedError struct{ name string }

func (e *removedError) Error() string {
	return fmt.Sprintf("journal segment %s was removed from disk (link count 0)", e.name)
}

func (e *removedError) Is(target error) bool { return target == ErrRemoved }

// checkLinked returns an error matching ErrRemoved when the active segment
// has been unlinked (wmu held).
func (j *Local) checkLinked() error {
	gone, err := j.active.Removed()
	if err != nil {
		return fmt.Errorf("journal: stat %s: %w", j.path(j.activeFirst()), err)
	}
	if gone {
		return &removedError{name: j.path(j.activeFirst())}
	}
	return nil
}

// ErrNeedsRepair is what Restart returns (wrapped) without Options.Repair.
var ErrNeedsRepair = errors.New("journal: dropping records needs Options.Repair")

// Restart drops every record the journal holds and starts it again, empty,
// at sequence first. It is for a journal that ends below what its consumer
// already holds (the storage backend applied up to first-1, and the journal
// was removed, or cut by a repair): appending after the journal's own end
// would hand out sequences the consumer has seen, and it would ignore those
// records. The consumer holds every record dropped (all are below first),
// so nothing it has is lost; what only the missing records held is lost
// already. why says so in the warning, which goes to Options.Logf and
// Recovery().Warnings.
//
// Like Open's cuts it needs Options.Repair (ErrNeedsRepair otherwise). It
// must run before anything is appended, and first must be above every
// sequence handed out. The new segment is made durable before the old ones
// are removed: a crash in between leaves a gap, which the next Open refuses
// and a repair cuts back to the old records, as if Restart never ran.
func (j *Local) Restart(first uint64, why string) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	failed, next, busy := j.failed, j.nextSeq, j.closing || len(j.batches) > 0 || j.inflight != nil
	old := append([]segment(nil), j.segs...)
	j.mu.Unlock()
	switch {
	case failed != nil:
		return failed
	case busy:
		return fmt.Errorf("journal: restart at %d: records are pending, or the journal is closing", first)
	case first < next:
		return fmt.Errorf("journal: restart at %d: sequences up to %d are handed out already", first, next-1)
	case first == next:
		return nil
	case !j.opts.Repair:
		return fmt.Errorf("%w: restarting at sequence %d would drop the journal's records %d..%d",
			ErrNeedsRepair, first, old[0].first, next-1)
	}
	f, err := j.createSegment(first)
	if err != nil {
		return fmt.Errorf("journal: restart: %w", err)
	}
	var names []string
	for _, s := range old {
		name := j.path(s.first)
		if err := j.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Close()
			return fmt.Errorf("journal: restart at %d: remove %s: %w", first, name, err)
		}
		names = append(names, name)
	}
	if err := j.fs.SyncDir(j.opts.Dir); err != nil {
		f.Close()
		return fmt.Errorf("journal: restart at %d: %w", first, err)
	}
	if j.active != nil {
		j.active.Close()
	}
	j.active = f
	j.writeOff, j.zeroEnd, j.groupStart = headerSize, headerSize, headerSize
	j.markFirst = 0
	j.lastSync = time.Now()

	held := "no records"
	if next > old[0].first {
		held = fmt.Sprintf("records %d..%d", old[0].first, next-1)
	}
	msg := fmt.Sprintf("JOURNAL RESTARTED at sequence %d: %s; removed %d segment file(s) holding %s", first, why, len(names), held)
	j.mu.Lock()
	j.segs = []segment{{first: first, size: headerSize}}
	j.nextSeq = first
	j.durable.Store(first - 1)
	j.synced = first - 1
	j.lastGroup = 0
	rep := &j.recovery
	rep.Dropped = append(rep.Dropped, names...)
	rep.Warnings = append(rep.Warnings, msg)
	rep.Segments, rep.FirstSeq, rep.LastSeq = 1, first, first-1
	// The flush_alls were in the records dropped, which the consumer
	// holds: left listed, a restart would cut or bite at them again, and
	// drop what the consumer stored after them.
	rep.Flushes = nil
	j.mu.Unlock()
	j.opts.Logf("%s", msg)
	return nil
}
