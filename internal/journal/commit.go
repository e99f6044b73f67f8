package journal

import "time"

// Group commit without a writer goroutine in the way. The classic design
// (one writer goroutine that takes what appenders queued) costs two
// goroutine hand-offs per group: appender to writer, and writer back to
// the appender after the fsync. On a small virtual machine each hand-off
// that crosses threads is a futex wake-up of tens of microseconds, as much
// as a third of an NVMe fdatasync. So the waiters write instead, as
// LevelDB's and RocksDB's write groups do: the first goroutine to wait on
// a group that nobody is writing takes the writer role, writes the queued
// groups in order up to its own (one write and one fdatasync each), and on
// the way out hands the role to one goroutine waiting on a later group.
// With one client, parsing, executing, writing, syncing and replying run
// on one goroutine, as in Redis's event loop; with many, each fsync still
// covers everything appended while the previous one ran.
//
// The background goroutine (run) remains for what no waiter does: groups
// nobody waits for (sweep), the async mode's periodic fdatasync, and the
// last groups on Close.

// sweepInterval is how often the background goroutine looks for a group
// that has waited a whole interval with no writer.
const sweepInterval = 10 * time.Millisecond

// lead writes the queued groups in order until seq is acknowledged, the
// queue is empty, or the journal fails. j.mu is held on entry and on
// return; it is released around the I/O.
func (j *Local) lead(seq uint64) {
	j.writing = true
	delayed := false
	for j.durable.Load() < seq && j.failed == nil && len(j.batches) > 0 {
		if d := j.opts.MaxDelay; d > 0 && !delayed && j.batches[0] == j.open && !j.closing &&
			len(j.open.buf) < j.opts.MaxGroupBytes {
			// Optional batching delay: let the open group fill a little.
			delayed = true
			j.mu.Unlock()
			time.Sleep(d)
			j.mu.Lock()
			continue
		}
		delayed = false
		b := j.batches[0]
		copy(j.batches, j.batches[1:])
		j.batches = j.batches[:len(j.batches)-1]
		if b == j.open {
			j.open = nil
		}
		j.inflight = b
		closing := j.closing
		j.mu.Unlock()
		syncErr, err := j.writeGroup(b, closing)
		if err != nil {
			j.fail(err, syncErr)
		}
		j.mu.Lock()
	}
	j.writing = false
	j.handOff()
}

// handOff gives the writer role to one goroutine blocked on the oldest
// group that has any (j.mu held). A group nobody waits for is left to the
// next waiter, appender or sweep.
func (j *Local) handOff() {
	if j.closing {
		j.durCond.Broadcast() // Close's goroutine waits for the role
	}
	for _, b := range j.batches {
		if b.rv.waiters > 0 {
			select {
			case b.rv.lead <- struct{}{}:
			default: // already offered
			}
			return
		}
	}
}

// sweep writes the queued groups when the oldest one has sat through a
// whole sweep interval with no writer: records appended without a waiter
// (a follower reading ahead, a test) must still reach the disk.
func (j *Local) sweep() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.writing || len(j.batches) == 0 {
		j.swept = nil
		return
	}
	if rv := j.batches[0].rv; rv != j.swept {
		j.swept = rv
		return
	}
	j.swept = nil
	j.lead(j.batches[len(j.batches)-1].last)
}
