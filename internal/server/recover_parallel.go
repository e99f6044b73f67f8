package server

// Loading the store and the journal tail at once (issue #4: a restart was
// one goroutine loading the store, then one replaying the journal, on a
// machine with more cores). One goroutine replays the journal, which must
// go in order; the others load the store's key ranges (storage.ScanParts),
// and the journal's goroutine joins them when it is done.
//
// The version rule makes most of this order-free: every item's CAS is the
// journal sequence of its write, and a set is applied only over an older
// version, so a key's newest set wins whichever source comes first. What
// leaves no version behind does not commute: a delete, a touch, a set that
// has expired since. Replayed before the store's version of the key is
// loaded, a delete would find nothing and the store would then bring the
// key back; a touch would be lost. So the replay also keeps those records
// (deferred), and once everything is loaded applies them again, in journal
// order, under the same rule: each now meets what the sequential order
// would have shown it, or a newer set that makes it a no-op. Applying a
// delete or a touch twice changes nothing the first did not.
//
// Everything must fit in memory for this: when loading evicts, which items
// survive would depend on the interleaving, where the sequential order
// keeps the journal's (newer) items over the store's. When they may not
// fit, or there is one core, warm loads one source after the other.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// partsPerWorker is how many store ranges each goroutine gets on average:
// more than one, so that whoever is done first (the journal's goroutine,
// or a range that held less) takes the next.
const partsPerWorker = 4

// Set by this package's tests only: testWarmWorkers replaces GOMAXPROCS
// as the number of goroutines warm-up may use (1 loads one source after
// the other), and testWarmJournalFirst holds the store's load back until
// the journal is replayed, the order in which deletes and touches would be
// lost if they were not applied again.
var (
	testWarmWorkers      int
	testWarmJournalFirst bool
)

// parallelWarm decides whether the store and the journal tail may be
// loaded at once, and with how many goroutines: the store must say how
// much it holds (storage.Sizer), and that and the whole journal on disk
// must fit in what warm-up may fill.
func (srv *Server) parallelWarm(d *durable, be storage.Backend) (workers int, storeItems uint64, ok bool) {
	workers = runtime.GOMAXPROCS(0)
	if testWarmWorkers > 0 {
		workers = testWarmWorkers
	}
	s, sized := be.(storage.Sizer)
	if workers < 2 || !sized {
		return 0, 0, false
	}
	items, bytes := s.LiveSize()
	need := bytes + items*storage.ItemOverhead + d.j.Stats().SizeOnDisk
	if need > srv.warmLimit() {
		return 0, 0, false
	}
	return workers, uint64(max(items, 0)), true
}

// warmParallel loads the store and the journal records [from, end] with
// workers goroutines (see the file comment).
func (srv *Server) warmParallel(d *durable, be storage.Backend, cut, from, end uint64, p *progress, workers int, storeItems uint64) error {
	parts := storage.ScanParts(be, partsPerWorker*workers)
	queue := make(chan storage.ScanPart, len(parts))
	for _, pt := range parts {
		queue <- pt
	}
	close(queue)
	ctx, cancel := srv.untilStop()
	defer cancel()
	w := srv.stallWatch(d)
	ctx, unwatch := w.watch(ctx)
	defer unwatch()
	sp := p.part("loading the store", storeItems)
	var jp *progressPart
	if end >= from {
		jp = p.part("replaying journal", end-from+1)
	} else {
		srv.logger.Printf("warm-up: no journal records to replay")
	}
	now := time.Now().Unix()
	var def deferred
	var left atomic.Int64 // store ranges not yet loaded
	left.Store(int64(len(parts)))
	var firstErr error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { firstErr = err })
		cancel() // the other goroutines stop at their next range
	}
	replayed := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				var err error
				if jp != nil {
					err = srv.replay(d, from, end, jp, &def)
				}
				close(replayed)
				if err != nil {
					fail(err)
					return
				}
				if jp != nil {
					jp.finish()
				}
			} else if testWarmJournalFirst {
				<-replayed
			}
			l := storeLoader{srv: srv, d: d, cut: cut, now: now, p: sp, w: w}
			for part := range queue {
				if ctx.Err() != nil {
					return
				}
				err := part(ctx, now, l.load)
				l.c.publish(d, sp)
				switch {
				case err == nil:
				case ctx.Err() != nil && errors.Is(err, context.Canceled):
					return // another goroutine failed
				case errors.Is(err, errShuttingDown):
					fail(err)
					return
				default:
					fail(fmt.Errorf("storage: warm: %w", err))
					return
				}
				if left.Add(-1) == 0 {
					sp.finish()
					unwatch() // the journal replay may go on: not the store's
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && errors.Is(context.Cause(ctx), errWarmStalled) {
		firstErr = context.Cause(ctx) // every worker saw its context cancelled
	}
	if firstErr != nil {
		return w.stalled(ctx, firstErr)
	}
	return srv.applyDeferred(d, &def)
}

// deferred is what a replay beside the store's load applies again at the
// end: the records that may remove or touch an item (see the file
// comment). Keys are copied into one buffer, since a record's key aliases
// the journal reader's.
type deferred struct {
	keys []byte
	recs []deferredRec
}

type deferredRec struct {
	seq     uint64
	exptime int64
	off     int
	klen    int
	typ     journal.Type
	applied bool // the first time, during the replay
}

func (def *deferred) add(rec *journal.Record, applied bool) {
	def.recs = append(def.recs, deferredRec{seq: rec.Seq, exptime: rec.Exptime, off: len(def.keys), klen: len(rec.Key),
		typ: rec.Type, applied: applied})
	def.keys = append(def.keys, rec.Key...)
}

// applyDeferred applies the deferred records again, in journal order, and
// counts those that changed nothing either time as skipped.
func (srv *Server) applyDeferred(d *durable, def *deferred) error {
	if len(def.recs) == 0 {
		return nil
	}
	start := time.Now()
	now := start.Unix()
	var skipped uint64
	for i, r := range def.recs {
		if i%loadBatch == 0 && srv.loadStopped() {
			return errShuttingDown
		}
		rec := journal.Record{Seq: r.seq, Type: r.typ, Exptime: r.exptime, Key: def.keys[r.off : r.off+r.klen]}
		if !srv.apply(&rec, now, d.warming.Load()) && !r.applied {
			skipped++
		}
	}
	d.recovery.skipped.Add(skipped)
	srv.logger.Printf("warm-up: applied %d deletes, touches and expired sets again after the store in %v",
		len(def.recs), time.Since(start).Round(time.Millisecond))
	return nil
}
