package server

// The storage backend beside the journal: the embedded Pebble store in
// DIR/pebble, fed by the storer (internal/storage), which applies the
// journal in the background and truncates it behind itself. At start the
// memory tier is warmed from the backend first (the most recently written
// items, up to the memory limit: storage.Warm), then from the journal
// records the backend has not applied.
//
// The storer normally runs in the server. When another process holds the
// data directory's storer lock (`petrel storer` running off the serving
// box), the server opens the store read-only to warm from it, runs no
// storer, and truncates its journal below the sequence that process
// reports it holds durably (storage.ReadAppliedMark).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// backing is the durable state's storage side.
type backing struct {
	lock     *storage.Lock                  // the storer lock, when the storer runs here
	store    storage.Backend                // open while the storer runs here
	storer   atomic.Pointer[storage.Storer] // set once it runs
	applied  uint64                         // the store's applied sequence when opened
	external bool                           // another process runs the storer

	cancel context.CancelFunc
	done   chan struct{}
}

// openBacking opens the store for warm-up. It returns the backend to warm
// from (nil for none) and the sequence it has applied. held is the
// storer's lock when the caller took it already (repairLock), else nil.
func (srv *Server) openBacking(d *durable, held *storage.Lock) (*backing, storage.Backend, uint64, error) {
	dir := d.cfg.DataDir
	b := &backing{}
	lock, err := held, error(nil)
	if lock == nil {
		lock, err = storage.LockStorer(dir)
	}
	switch {
	case errors.Is(err, storage.ErrLocked):
		// Write-through and read-through need the storer and the store in
		// this process: with them elsewhere, writes would be acknowledged
		// write-behind and misses would not read the backend, silently.
		if bc := d.cfg.Backend; bc.writeThrough() || bc.ReadThrough {
			return nil, nil, 0, fmt.Errorf("%v: another process (petrel storer) applies the journal to the backend, "+
				"and --backend-mode=write-through and --read-through need the storer in this process: "+
				"stop petrel storer and start the server (it runs the storer itself), or use write-behind without read-through", err)
		}
		b.external = true
		srv.logger.Printf("storage: %v: the storer runs in another process; warming read-only", err)
		p, err := srv.openBackend(d, true)
		if err != nil {
			srv.logger.Printf("storage: cannot open the backend read-only (%v); warming from the journal alone", err)
			return b, nil, 0, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Backend.timeout())
		applied, _ := p.AppliedSeq(ctx)
		cancel()
		return b, p, applied, nil
	case err != nil:
		return nil, nil, 0, err
	}
	b.lock = lock
	if err := storage.RemoveStorerProgress(dir); err != nil {
		srv.logger.Printf("%v (a petrel storer started later replaces it)", err)
	}
	p, err := srv.openBackend(d, false)
	if err != nil {
		lock.Unlock()
		return nil, nil, 0, err
	}
	b.store = p
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Backend.timeout())
	applied, err := p.AppliedSeq(ctx)
	cancel()
	b.applied = applied
	if err == nil {
		err = checkJournalFits(d.j, applied, p)
	}
	if err != nil {
		p.Close()
		lock.Unlock()
		return nil, nil, 0, err
	}
	return b, p, applied, nil
}

// checkJournalFits refuses a journal whose records the backend cannot
// store: a value over DynamoDB's limit, journaled under another backend
// (the limit is enforced at the protocol only for new writes). The
// storer would retry that batch for ever, and nothing after it would
// reach the backend.
func checkJournalFits(j journal.Journal, applied uint64, be storage.Backend) error {
	lim, ok := be.(interface{ MaxValueSize() int })
	if !ok {
		return nil
	}
	rd, err := j.ReadFrom(applied + 1)
	if err != nil {
		return fmt.Errorf("check the journal against the backend's value limit: %w", err)
	}
	defer rd.Close()
	var rec journal.Record
	for {
		err := rd.Next(&rec)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check the journal against the backend's value limit: %w", err)
		}
		if rec.Type == journal.TypeSet && len(rec.Key)+len(rec.Value) > lim.MaxValueSize() {
			return fmt.Errorf("the journal holds a value of %d bytes for key %q (sequence %d), over this backend's limit of %d "+
				"(it was written under another backend): start once with that backend so that its storer applies the journal, then switch",
				len(rec.Value), rec.Key, rec.Seq, lim.MaxValueSize())
		}
	}
}

// repairLock takes the storer's lock for a --repair start, before the
// journal is opened and cut. A repair beside `petrel storer` is refused:
// that process applies the journal being cut and restarted, what it has
// applied can be ahead of anything this process can read (its store is
// locked, and it publishes its progress only every --poll), and a journal
// restarted below that would hand out sequences again that it has seen.
func repairLock(dataDir string) (*storage.Lock, error) {
	lock, err := storage.LockStorer(dataDir)
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("--repair: %v: another process (petrel storer) applies this journal; "+
			"stop it first, then start the server with --repair (the server runs the storer itself), "+
			"and start petrel storer again once the server is up", err)
	}
	return lock, err
}

// checkApplied handles a journal that ends below what the backend holds
// (the journal was removed, or cut by --repair): new appends would reuse
// sequences the backend already has, and the backend, which never goes back
// in time, would ignore them. The backend then holds the newest state left,
// so the way on is from it: with --repair the journal starts again after
// the backend's applied sequence (journal.Local.Restart), which loses
// nothing the backend holds. Without it the start is refused, saying so.
// Rebuilding the store from the journal instead would throw away what only
// the store still has.
//
// Beside `petrel storer` (external), the read-only view of the store can
// be behind what that process has applied; what it last published counts
// too. A restart is never made there (repairLock refuses --repair).
func checkApplied(j *journal.Local, applied uint64, external bool, dataDir string) error {
	if external {
		p, ok, err := storage.ReadStorerProgress(dataDir)
		if err != nil {
			return err
		}
		if ok {
			applied = max(applied, p.Applied)
		}
	}
	last := j.LastSeq()
	if applied <= last {
		return nil
	}
	why := fmt.Sprintf("--repair: the storage backend has applied up to sequence %d but the journal ended at %d "+
		"(it was removed, or cut by --repair); records %d..%d are in the backend, and nothing it holds is lost. "+
		"Writes acknowledged after the backend's last durable flush, held only in the missing journal, are lost",
		applied, last, last+1, applied)
	err := j.Restart(applied+1, why)
	if errors.Is(err, journal.ErrNeedsRepair) && external {
		return fmt.Errorf("the storage backend has applied up to sequence %d but the journal ends at %d "+
			"(was the journal removed, or cut by --repair?). Stop petrel storer, then start the server with --repair: "+
			"it runs the storer itself and starts the journal again after what the backend holds", applied, last)
	}
	if errors.Is(err, journal.ErrNeedsRepair) {
		return fmt.Errorf("the storage backend has applied up to sequence %d but the journal ends at %d "+
			"(was the journal removed, or cut by --repair?). The backend holds the newest state that is left: "+
			"start with --repair to continue from it. The journal then starts again at sequence %d, and "+
			"nothing the backend holds is lost (what was acknowledged after its last durable flush and held only "+
			"in the missing journal records is lost already). Do not move the backend's data aside: "+
			"it would be rebuilt from a journal that lacks those records", applied, last, applied+1)
	}
	if err != nil {
		return fmt.Errorf("start the journal after the backend's applied sequence %d: %w", applied, err)
	}
	return nil
}

// warmBackend loads the backend's items into the memory tier, the most
// recently written first when they do not all fit (storage.Warm).
func (srv *Server) warmBackend(d *durable, be storage.Backend, cut uint64, p *progress) error {
	var total uint64
	if s, ok := be.(storage.Sizer); ok {
		items, _ := s.LiveSize()
		total = uint64(max(items, 0))
	}
	sp := p.part("loading the store", total)
	w := srv.stallWatch(d)
	l := storeLoader{srv: srv, d: d, cut: cut, now: time.Now().Unix()}
	var last int64
	ctx, cancel := srv.untilStop()
	defer cancel()
	ctx, unwatch := w.watch(ctx)
	defer unwatch()
	// Watched at the scan, not the load: Warm's sizing pass, and items
	// below its cutoff, reach no loader.
	err := storage.Warm(ctx, w.backend(be), l.now, srv.warmLimit(), l.load, func(items, bytes int64) {
		sp.add(uint64(items-last), 0)
		sp.bytes.Store(uint64(bytes))
		last = items
	})
	l.c.publish(d, nil)
	sp.finish()
	return w.stalled(ctx, err)
}

// untilStop is a context cancelled when shutdown begins or NewContext's
// context is done: a warm-up reading a database that stopped answering
// must not keep the server from stopping.
func (srv *Server) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(srv.startStop)
	go func() {
		select {
		case <-srv.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// warmLimit is how much of the memory limit the store may fill: the rest
// is room for the journal tail and new writes.
func (srv *Server) warmLimit() int64 { return srv.cfg.MemoryMB << 20 * 9 / 10 }

// storeLoader applies a backend's items to the memory tier; one per
// goroutine.
type storeLoader struct {
	srv *Server
	d   *durable
	cut uint64 // versions below it are flushed (see flushCut)
	now int64
	p   *progressPart // nil when the caller reports progress itself
	w   *stallWatch   // told of every item; nil when the scan is watched, or no watch
	n   uint64        // items seen
	c   loadCounts
	rec journal.Record
}

// load is a storage.Warm or ScanPart callback.
func (l *storeLoader) load(it storage.Item) error {
	if l.srv.loadStopped() {
		return errShuttingDown
	}
	if l.n++; l.n%loadBatch == 0 {
		l.c.publish(l.d, l.p)
	}
	if l.w != nil {
		l.w.items.Add(1)
	}
	if l.p != nil {
		l.c.progItems++
		l.c.progBytes += uint64(len(it.Key)+len(it.Value)) + storage.ItemOverhead
	}
	if it.Version < l.cut {
		return nil // a flush_all in the journal tail removes it
	}
	l.rec = journal.Record{Seq: it.Version, CAS: it.Version, Type: journal.TypeSet,
		Key: it.Key, Value: it.Value, Flags: it.Flags, Exptime: it.Exptime}
	if l.srv.apply(&l.rec, l.now, l.d.warming.Load()) {
		l.c.items++
		l.c.bytes += uint64(len(it.Key) + len(it.Value))
	}
	return nil
}

// startStorer runs the storer in the background (when it runs here) and
// the journal truncation for an external one.
func (srv *Server) startStorer(d *durable, b *backing) {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	if b.external {
		if lim := d.cfg.Backend.BacklogLimit; lim > 0 {
			go srv.watchExternalBacklog(ctx, d, lim)
		}
		go func() {
			defer close(b.done)
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					seq, err := storage.ReadAppliedMark(d.cfg.DataDir)
					if err == nil && seq > 0 {
						err = d.j.TruncateBelow(seq + 1)
					}
					if err != nil {
						srv.logf(1, "journal truncation for the external storer: %v", err)
					}
				}
			}
		}()
		return
	}
	opts := storage.StorerOptions{Logf: srv.logger.Printf, AppliedHint: &b.applied}
	if d.cfg.Backend.kind() != BackendPebble {
		opts.CallTimeout = d.cfg.Backend.timeout()
	}
	if bc := d.cfg.Backend; bc.kind() != BackendPebble || bc.writeThrough() {
		// The storer's pacing counts an Apply's wall time as work. Against
		// a database that time is mostly a round trip, not this process's
		// CPU, and under write-through every pause is added to the
		// replies' latency: no pacing then.
		opts.CPUShare = 1
	}
	opts.GatherDelay = d.cfg.Backend.batchDelay()
	if d.cfg.Backend.kind() != BackendPebble {
		opts.MaxBatchRecords, opts.MaxBatchBytes = dbBatchRecords, dbBatchBytes
	}
	st := storage.NewStorer(d.j, b.store, opts)
	b.storer.Store(st)
	if lim := d.cfg.Backend.BacklogLimit; lim > 0 {
		go srv.watchBacklog(ctx, d, st, lim)
	}
	go func() {
		defer close(b.done)
		err := st.Run(ctx)
		if err != nil {
			srv.logger.Printf("STORER STOPPED: %v; the journal keeps every write but is no longer truncated", err)
		}
	}()
}

// closeBacking stops the storer and closes the store (which flushes it).
// The storer is not left to catch up: whatever it has not applied is in
// the journal, which the next start replays.
//
// Neither wait is unbounded. On a disk that cannot take a flush, Pebble
// stalls an Apply until a flush succeeds, which may be never; then the
// store is left open, as a crash would leave it: it is only ever ahead of
// the journal's truncation point, so the next start loses nothing.
func (srv *Server) closeBacking(b *backing) {
	if b == nil {
		return
	}
	if b.done != nil {
		b.cancel()
		stopped := make(chan error, 1)
		go func() { <-b.done; stopped <- nil }()
		if err := storage.WaitStorerStopped(stopped); err != nil {
			srv.logger.Printf("%v", err)
			return
		}
	}
	if b.store != nil {
		err := storage.CloseStore(b.store)
		if errors.Is(err, storage.ErrStoreStuck) {
			srv.logger.Printf("%v", err)
			return
		}
		if err != nil {
			srv.logger.Printf("closing the store: %v; the journal keeps every write the store lacks, and the next start replays them", err)
		}
	}
	_ = b.lock.Unlock()
}
