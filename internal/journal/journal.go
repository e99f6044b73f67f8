package journal

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Journal is what the server, the storer and replicas need from a journal,
// local or remote.
//
// Sequence numbers start at 1 and are gap-free. Append returns the record's
// sequence at once; the record is acknowledged (durable in the journal's
// mode) once DurableSeq() >= seq, which WaitDurable waits for. A journal
// whose disk fails stops acknowledging: WaitDurable and Append return an
// error wrapping ErrFailed and the cause, and Err reports it, until the
// implementation proves itself intact again (Local.Resume).
//
// The server calls Append inside the cache's per-key critical section and
// stores the item with CAS = the returned sequence, so that per-key order
// in memory and in the journal agree; it then holds the reply until
// DurableSeq() reaches the sequence.
type Journal interface {
	// Append assigns r the next sequence (r.Seq; a Set with CAS 0 also
	// gets CAS = Seq), queues it for the next group and returns the
	// sequence. It blocks only when the writer is too far behind.
	Append(r *Record) (uint64, error)
	// DurableSeq is the highest acknowledged sequence (0 for none).
	DurableSeq() uint64
	// WaitDurable blocks until seq is acknowledged, or returns the error
	// that stopped it from ever being acknowledged. seq may be beyond the
	// last append: a follower waits for the next record that way.
	WaitDurable(seq uint64) error
	// ReadFrom returns a Reader positioned at seq (0: the first record
	// kept). It reads acknowledged records only, while writing goes on.
	ReadFrom(seq uint64) (Reader, error)
	// TruncateBelow deletes the files whose records are all below seq.
	TruncateBelow(seq uint64) error
	// Err is the error that failed the journal, or nil.
	Err() error
	// Close writes and acknowledges what was appended, then releases the
	// journal.
	Close() error
}

// Reader reads records in sequence order.
type Reader interface {
	// Next decodes the next record into r; r.Key and r.Value are valid
	// until the next call. It returns io.EOF when it has caught up with
	// the acknowledged records; calling it again later continues (pair it
	// with WaitDurable to follow the journal).
	Next(r *Record) error
	Close() error
}

// segment is one file of the journal.
type segment struct {
	first uint64
	size  int64 // for the active segment: the end of acknowledged bytes
}

// batch is one group in the making: encoded frames, in sequence order.
type batch struct {
	buf         []byte
	first, last uint64
	lastOff     int // offset of the last frame in buf
	rv          *rendezvous
}

// rendezvous is where the goroutines waiting on one group meet. It is
// allocated per group, not recycled with the batch, so that a waiter that
// wakes late never touches the next group's state.
type rendezvous struct {
	done    chan struct{} // closed once the group is acknowledged or failed
	lead    chan struct{} // capacity 1: hands the writer role to one waiter
	waiters int           // goroutines blocked on it; under Local.mu
}

// Local is the journal in segment files in one directory, with group
// commit. It implements Journal.
type Local struct {
	opts     Options
	fs       FS
	recovery Recovery

	mu         sync.Mutex
	durCond    sync.Cond // durable advanced, or failed, or closed (for waiters on future sequences)
	spaceCond  sync.Cond // pending bytes freed, or failed, or closed
	nextSeq    uint64
	durable    atomic.Uint64
	synced     uint64
	batches    []*batch // queued groups; open, when set, is the last
	open       *batch
	inflight   *batch   // taken by the writer, not yet acknowledged
	lost       []Record // keys and types of the records fail discarded (Lost)
	writing    bool     // some goroutine holds the writer role (commit.go)
	lastGroup  uint64   // records in the last group written
	swept      *rendezvous
	free       []*batch
	pending    int
	failed     error
	syncFailed bool // the failure was a failed fdatasync
	closing    bool
	closed     bool
	segs       []segment // segs[len-1] is the active one
	st         Stats

	wake chan struct{}
	done chan struct{}

	// Owned by the writer goroutine; wmu is held around each group's I/O
	// so that Resume and Close can take the file from it.
	wmu        sync.Mutex
	active     File
	writeOff   int64  // end of written bytes in the active file
	zeroEnd    int64  // end of the active file: zeros from writeOff on (zero.go)
	groupStart int64  // offset of the last acknowledged group
	markFirst  uint64 // first sequence not yet covered by a group-end mark
	lastSync   time.Time
}

var _ Journal = (*Local)(nil)

func (j *Local) path(first uint64) string { return filepath.Join(j.opts.Dir, segName(first)) }

// Recovery reports what Open found and repaired.
func (j *Local) Recovery() Recovery { return j.recovery }

// Append implements Journal.
func (j *Local) Append(r *Record) (uint64, error) {
	if err := validate(r); err != nil {
		return 0, err
	}
	r.groupEnd, r.groupFirst = false, 0
	size := EncodedLen(r)
	j.mu.Lock()
	for {
		if j.failed != nil {
			err := j.failed
			j.mu.Unlock()
			return 0, err
		}
		if j.closing {
			j.mu.Unlock()
			return 0, ErrClosed
		}
		if j.pending == 0 || j.pending+size <= j.opts.MaxPendingBytes {
			break
		}
		j.st.Stalls++
		if !j.writing && len(j.batches) > 0 {
			// Nobody is writing, and the waiters may all be appenders
			// stuck here: write the oldest group ourselves.
			j.lead(j.batches[0].last)
			continue
		}
		j.spaceCond.Wait()
	}
	seq := j.nextSeq
	j.nextSeq++
	b := j.open
	if b == nil || len(b.buf)+size > j.opts.MaxGroupBytes {
		b = j.newBatch()
		j.batches = append(j.batches, b)
		j.open = b
	}
	r.Seq = seq
	if r.Type == TypeSet && r.CAS == 0 {
		r.CAS = seq
	}
	if len(b.buf) == 0 {
		b.first = seq
	}
	b.last = seq
	b.lastOff = len(b.buf)
	b.buf = AppendRecord(b.buf, r)
	j.pending += size
	j.mu.Unlock()
	return seq, nil
}

func (j *Local) newBatch() *batch {
	if n := len(j.free); n > 0 {
		b := j.free[n-1]
		j.free = j.free[:n-1]
		b.buf = b.buf[:0]
		b.rv = newRendezvous()
		return b
	}
	return &batch{buf: make([]byte, 0, 64<<10), rv: newRendezvous()}
}

func newRendezvous() *rendezvous {
	return &rendezvous{done: make(chan struct{}), lead: make(chan struct{}, 1)}
}

// batchFor returns the queued or in-flight group holding seq, if any.
func (j *Local) batchFor(seq uint64) *batch {
	if b := j.inflight; b != nil && b.first <= seq && seq <= b.last {
		return b
	}
	for _, b := range j.batches {
		if b.first <= seq && seq <= b.last {
			return b
		}
	}
	return nil
}

// LastSeq is the sequence of the last record appended (acknowledged or
// not; 0 for none). A reader that finds nothing waits for it, since the
// absence may come from a delete not yet durable.
func (j *Local) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextSeq - 1
}

// DurableSeq implements Journal. It takes no lock.
func (j *Local) DurableSeq() uint64 { return j.durable.Load() }

// WaitDurable implements Journal. It is also where groups get written
// (commit.go): a waiter that finds nobody writing becomes the writer and
// commits the queued groups up to its own, so that with one client the
// request, the write, the fdatasync and the reply all run on one goroutine,
// with no hand-off. Other waiters sleep on their own group, so that each
// fsync wakes only the appenders it made durable.
func (j *Local) WaitDurable(seq uint64) error {
	if seq <= j.durable.Load() {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.durable.Load() < seq {
		if j.failed != nil {
			return j.failed
		}
		if j.closed {
			return ErrClosed
		}
		b := j.batchFor(seq)
		if b == nil {
			j.durCond.Wait()
			continue
		}
		if !j.writing {
			j.lead(seq)
			continue
		}
		rv := b.rv
		rv.waiters++
		j.mu.Unlock()
		select {
		case <-rv.done:
		case <-rv.lead:
		}
		j.mu.Lock()
		rv.waiters--
	}
	return nil
}

// Err implements Journal.
func (j *Local) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
}

// Stats returns the journal's counters.
func (j *Local) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.st
	s.Mode = j.opts.Mode
	s.NextSeq = j.nextSeq
	s.DurableSeq = j.durable.Load()
	s.SyncedSeq = j.synced
	s.PendingBytes = j.pending
	s.Segments = len(j.segs)
	s.FirstSeq = j.segs[0].first
	for _, sg := range j.segs {
		s.SizeOnDisk += sg.size
	}
	s.Failed = j.failed != nil
	return s
}

// TruncateBelow implements Journal. It never deletes the active segment,
// and readers already inside a deleted segment finish reading it.
func (j *Local) TruncateBelow(seq uint64) error {
	j.mu.Lock()
	var drop []uint64
	for len(j.segs) > 1 && j.segs[1].first <= seq {
		drop = append(drop, j.segs[0].first)
		j.segs = j.segs[1:]
	}
	j.mu.Unlock()
	for _, first := range drop {
		if err := j.fs.Remove(j.path(first)); err != nil {
			return fmt.Errorf("journal: truncate below %d: %w", seq, err)
		}
	}
	if len(drop) > 0 {
		if err := j.fs.SyncDir(j.opts.Dir); err != nil {
			return fmt.Errorf("journal: truncate below %d: %w", seq, err)
		}
	}
	return nil
}

// segmentFor returns the first sequence of the segment holding seq.
func (j *Local) segmentFor(seq uint64) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq < j.segs[0].first {
		return 0, fmt.Errorf("%w: %d is below the oldest record kept, %d", ErrTruncated, seq, j.segs[0].first)
	}
	i := sort.Search(len(j.segs), func(i int) bool { return j.segs[i].first > seq }) - 1
	return j.segs[i].first, nil
}

// segmentEnd returns how far a reader may read the segment starting at
// first, and whether it is still the active one. ok is false when the
// segment was truncated away.
func (j *Local) segmentEnd(first uint64) (end int64, active, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := sort.Search(len(j.segs), func(i int) bool { return j.segs[i].first >= first })
	if i == len(j.segs) || j.segs[i].first != first {
		return 0, false, false
	}
	return j.segs[i].size, i == len(j.segs)-1, true
}

// fail puts the journal in the failed state: nothing queued will be
// written, and every waiter and appender learns why.
func (j *Local) fail(err error, syncErr bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failed == nil {
		j.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		j.syncFailed = syncErr
	}
	if b := j.inflight; b != nil {
		j.lost = appendLost(j.lost, b.buf)
		close(b.rv.done)
		j.inflight = nil
	}
	for _, b := range j.batches {
		j.lost = appendLost(j.lost, b.buf)
		close(b.rv.done)
	}
	j.free = append(j.free, j.batches...)
	j.batches = j.batches[:0]
	j.open = nil
	j.pending = 0
	j.durCond.Broadcast()
	j.spaceCond.Broadcast()
}

// appendLost appends the records framed in buf, keys copied and values
// dropped: buf goes back to the free list.
func appendLost(lost []Record, buf []byte) []Record {
	for len(buf) > 0 {
		var r Record
		n, err := DecodeRecord(buf, &r)
		if err != nil {
			break // cannot happen: the journal framed buf itself
		}
		lost = append(lost, Record{Seq: r.Seq, Type: r.Type, Key: bytes.Clone(r.Key)})
		buf = buf[n:]
	}
	return lost
}

// Lost returns the records that were appended but never acknowledged
// because the journal failed (types, sequences and keys; no values). Their
// effects may have been applied where the caller keeps state (the memory
// tier): it must undo them before Resume, since Resume hands their
// sequences out again. Once the journal has failed nothing more can be
// appended, so the list does not grow after the failure is reported.
func (j *Local) Lost() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lost)
}

// Close implements Journal.
func (j *Local) Close() error {
	j.mu.Lock()
	if j.closing {
		j.mu.Unlock()
		<-j.done
		return nil
	}
	j.closing = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
	j.wmu.Lock()
	var err error
	if j.active != nil {
		err = j.active.Close()
		j.active = nil
	}
	j.wmu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	j.durCond.Broadcast()
	j.spaceCond.Broadcast()
	if j.failed != nil {
		return j.failed
	}
	if err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}
