package journal

import (
	"runtime"
	"sync/atomic"
	"time"
)

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
//
// Under concurrency the writer yields once before it takes a group, so
// that the goroutines the network poller has just made runnable append
// first and join it, rather than the next one. With a single P
// (GOMAXPROCS=1: -t 1, or a container limited to one CPU) this is what
// makes groups at all: the fdatasync holds the only P (sysmon rarely takes
// it back within a 0.1 ms sync), so without the yield every group was one
// record (on this project's VM at 50 connections: 1.3 records per group
// and 8k sets/s; with it 21.6 and 36k). With more Ps it makes groups
// larger and costs less CPU per record (async mode at 50 connections: 9
// records per group instead of 1.1, 15 µs of CPU per set instead of 18).
// It is skipped when the last group and this one hold a single record: a
// lone client gains nothing from a yield, and with idle Ps it costs a
// thread wake-up (+50 µs per set at one connection).

// singleP reports whether the runtime has one P. GOMAXPROCS can change
// while running (the runtime follows the container's CPU limit); reading
// it takes the scheduler lock, which costs nothing at one P and is not
// read at all with more.
var gomaxprocs atomic.Int32

func singleP() bool { return gomaxprocs.Load() <= 1 }

// sweepInterval is how often the background goroutine looks for a group
// that has waited a whole interval with no writer.
const sweepInterval = 10 * time.Millisecond

// lead writes the queued groups in order until seq is acknowledged, the
// queue is empty, or the journal fails. j.mu is held on entry and on
// return; it is released around the I/O.
func (j *Local) lead(seq uint64) {
	j.writing = true
	if singleP() || j.lastGroup > 1 || (len(j.batches) > 0 && j.batches[0].last > j.batches[0].first) {
		j.mu.Unlock()
		runtime.Gosched()
		j.mu.Lock()
	}
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
