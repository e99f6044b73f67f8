package analyze

import "sync"

// simQueue runs the simulator on its own goroutine: the analyzer appends
// operations to a batch and hands full batches over a channel, so reading
// and parsing the log overlap with the (much costlier) cache replay. The
// simulator's results are only read after close.
type simQueue struct {
	sim   *simulator
	batch []simOp
	ch    chan []simOp
	free  chan []simOp
	done  sync.WaitGroup
	err   error
}

type simKind uint8

const (
	opRead simKind = iota
	opStore
	opTouch
	opRemove
	opFlush
	opRate
)

type simOp struct {
	kind   simKind
	fill   bool
	setExp bool
	klen   int
	flags  uint32
	h      uint64
	now    int64
	vlen   int64
	exp    int64
	w      float64
	order  []uint64 // opRate
	seen   uint64   // opRate: reads in the log so far
}

const simBatch = 4096

func newSimQueue(sim *simulator) *simQueue {
	q := &simQueue{sim: sim, ch: make(chan []simOp, 4), free: make(chan []simOp, 6)}
	q.done.Add(1)
	go func() {
		defer q.done.Done()
		for b := range q.ch {
			for i := range b {
				q.apply(&b[i])
			}
			select {
			case q.free <- b[:0]:
			default:
			}
		}
	}()
	return q
}

func (q *simQueue) apply(op *simOp) {
	s := q.sim
	s.tick(op.now)
	switch op.kind {
	case opRead:
		s.read(op.h, op.w, op.fill, op.klen, op.vlen, op.exp, op.setExp)
	case opStore:
		s.store(op.h, op.klen, op.vlen, op.exp, op.flags)
	case opTouch:
		s.touch(op.h, op.exp, op.setExp)
	case opRemove:
		s.remove(op.h)
	case opFlush:
		s.flush()
	case opRate:
		if err := s.setRate(op.w, op.order, op.seen); err != nil && q.err == nil {
			q.err = err
		}
	}
}

func (q *simQueue) push(op simOp) {
	if q.batch == nil {
		select {
		case q.batch = <-q.free:
		default:
			q.batch = make([]simOp, 0, simBatch)
		}
	}
	q.batch = append(q.batch, op)
	if len(q.batch) == simBatch {
		q.ch <- q.batch
		q.batch = nil
	}
}

// close runs what is queued and stops the goroutine; the simulator may be
// read afterwards.
func (q *simQueue) close() error {
	if q.ch == nil {
		return q.err
	}
	if len(q.batch) > 0 {
		q.ch <- q.batch
		q.batch = nil
	}
	close(q.ch)
	q.done.Wait()
	q.ch = nil
	return q.err
}
