package server

// Startup and recovery with a data directory: open the journal (recovering
// a torn tail, refusing mid-journal corruption unless --repair), warm the
// memory tier, replay the journal into it, and only then accept clients.
//
// Replay never lets an older version overwrite a newer one: every item's
// CAS is the journal sequence of the write that produced it, and a record
// is applied to a key only when its sequence is above the CAS found there.
// That is what makes it safe to load the same key from several sources (the
// storage backend's snapshot and the journal tail, at once where they fit:
// recover_parallel.go) and, with --accept-during-warmup, while clients
// write: a live write always carries a sequence above everything being
// loaded, and a live delete or flush_all is remembered (warmGuard) so that
// loading does not bring back what a client removed. A request that finds
// no item during such a load waits for the load to end (s.do), since the
// item may simply not be loaded yet.
//
// An immediate flush_all in the journal is not replayed as a flush: items
// loaded from the store may be newer than it. The journal's Open, which
// reads every record anyway, lists the flush_alls (Recovery.Flushes); the
// last immediate one is the cut, and loading skips every version before
// it. A delayed flush_all still in the future is re-armed in the memory
// tier; one that came due while the server was down is bitten before
// loading (flush_bite.go).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/cache"
	"petrel/internal/journal"
	"petrel/internal/storage"
)

// testJournalFS, when set (by this package's tests only), is the journal's
// file layer: a journal.FaultFS injects disk faults.
var testJournalFS journal.FS

// errShuttingDown stops a load at shutdown, or when NewContext's context
// is done.
var errShuttingDown = ErrStopped

// ErrStopped is what NewContext returns when its context stopped the
// warm-up.
var ErrStopped = errors.New("shutting down")

// loadStopped reports whether a load must stop: shutdown has begun, or
// NewContext's context is done.
func (srv *Server) loadStopped() bool { return srv.closing.Load() || srv.startStop.Err() != nil }

// recoveryStats is what startup loaded, for the log and `stats`.
type recoveryStats struct {
	records  atomic.Uint64 // journal records replayed
	items    atomic.Uint64 // items loaded (backend and journal sets)
	bytes    atomic.Uint64 // key and value bytes loaded
	skipped  atomic.Uint64 // records older than what the key already held
	done     atomic.Bool
	duration atomic.Int64 // nanoseconds
}

// openDurable opens the journal and loads the memory tier (New calls it).
// Unless AcceptDuringWarmup is set it returns once loading is done.
func (srv *Server) openDurable() error {
	cfg := srv.cfg.Durable
	if !cfg.Enabled() {
		return nil
	}
	opts := journal.Options{
		Dir:          cfg.JournalDir(),
		Mode:         journal.ModeSync,
		SegmentSize:  cfg.JournalSegmentSize,
		SyncInterval: cfg.SyncInterval,
		MaxDelay:     cfg.JournalMaxDelay,
		Repair:       cfg.Repair,
		Logf: func(format string, args ...any) {
			srv.logger.Printf("journal recovery: "+format, args...)
		},
	}
	if cfg.mode() == DurabilityAsync {
		opts.Mode = journal.ModeAsync
	}
	if testJournalFS != nil {
		opts.FS = testJournalFS
	}
	lock, err := storage.LockJournal(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	// Under the journal lock, which a restore holds too: a marker seen
	// here is a restore that did not finish, not one still running.
	if err := storage.CheckRestore(cfg.DataDir); err != nil {
		lock.Unlock()
		return err
	}
	var held *storage.Lock
	if cfg.Repair {
		if held, err = repairLock(cfg.DataDir); err != nil {
			lock.Unlock()
			return err
		}
	}
	j, err := journal.Open(opts)
	if err != nil {
		if held != nil {
			held.Unlock()
		}
		lock.Unlock()
		if !cfg.Repair {
			return fmt.Errorf("journal %s: %w (to start anyway, cutting the journal there and losing what follows, use --repair)", opts.Dir, err)
		}
		return fmt.Errorf("journal %s: %w", opts.Dir, err)
	}
	rec := j.Recovery()
	srv.logger.Printf("journal %s (%s): %d segments, records %d..%d", opts.Dir, opts.Mode, rec.Segments, rec.FirstSeq, rec.LastSeq)
	d := &durable{cfg: cfg, mode: cfg.mode(), j: j, lock: lock}
	b, be, applied, err := srv.openBacking(d, held)
	if err == nil {
		err = checkApplied(j, applied, b.external, cfg.DataDir)
	}
	if err != nil {
		srv.closeBacking(b)
		j.Close()
		lock.Unlock()
		return fmt.Errorf("storage: %w", err)
	}
	d.back = b
	marks := flushMarks(be, j.Recovery().Flushes)
	dropReplacedFlush(be, marks, applied)
	srv.initBackendUse(d, b)
	srv.dur = d
	srv.bgWG.Add(1)
	go srv.watchJournal(d)
	srv.metrics.reg.MustRegister(&durableCollector{srv: srv})
	// Before serving and before the storer starts: Open's scan saw every
	// flush_all kept, below what the store has applied too (a delayed
	// flush the store holds must still be re-armed), the store's pending
	// marker stands for one the journal let go (flushMarks), and a bite
	// journaled here must reach the store.
	cut, err := srv.recoverFlush(d, marks, time.Now().Unix())
	if err != nil {
		if be != nil && b.external {
			be.Close()
		}
		srv.closeDurable()
		srv.dur = nil // closed: NewContext's Shutdown must not close it again
		return fmt.Errorf("warm-up: %w", err)
	}
	load := func() error {
		err := srv.warm(d, be, applied, cut)
		if b.external && be != nil {
			be.Close() // the read-only view; the other process keeps applying
		}
		srv.startStorer(d, b)
		return err
	}
	if !cfg.AcceptDuringWarmup {
		if err := load(); err != nil {
			srv.closeDurable()
			srv.dur = nil
			if srv.loadStopped() && !errors.Is(err, ErrStopped) {
				err = fmt.Errorf("%w: %w", ErrStopped, err) // a read cut by the context
			}
			return err
		}
		return nil
	}
	d.warming.Store(&warmGuard{keys: make(map[string]uint64)})
	d.loading = make(chan struct{})
	go func() {
		defer close(d.loading)
		// loadStopped, not closing alone: a signal cancels NewContext's
		// context, which cuts the scan, before Shutdown sets closing.
		if err := load(); err != nil && (errors.Is(err, errShuttingDown) || srv.loadStopped()) {
			// warming stays set: every later miss defers, finds the load
			// over and aborted, and fails, as the ones waiting now do.
			d.loadAborted.Store(true)
			srv.logger.Printf("warm-up stopped by the shutdown after %d items (%d journal records): nothing is lost, the next start loads again",
				d.recovery.items.Load(), d.recovery.records.Load())
			return
		} else if err != nil {
			srv.logger.Printf("warm-up failed, serving with what was loaded: %v", err)
		}
		d.warming.Store(nil)
	}()
	return nil
}

// watchJournal logs a journal failure even when no client is there to
// meet it (a failed background fdatasync in async mode), retries it every
// --journal-retry (resumeJournal), and reminds the log every minute while
// it lasts.
func (srv *Server) watchJournal(d *durable) {
	defer srv.bgWG.Done()
	retry := d.cfg.JournalRetry
	tick := time.Second
	if retry > 0 {
		tick = min(tick, retry)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastLog, lastTry time.Time
	seen := false // the failure, by this loop: the first retry is an interval later
	for {
		select {
		case <-srv.stop:
			return
		case now := <-t.C:
			err := d.j.Err()
			if err == nil {
				seen = false
				continue
			}
			if !seen {
				seen = true
				d.noteFailure(srv, err) // once: a connection may have logged it
				lastLog, lastTry = now, now
				continue
			}
			// A journal whose files were removed never resumes (Resume
			// refuses it): only a restart with --repair gets out of it.
			if retry > 0 && now.Sub(lastTry) >= retry && !errors.Is(err, journal.ErrRemoved) {
				lastTry = now
				if err = srv.resumeJournal(d); err == nil {
					continue
				}
			}
			if now.Sub(lastLog) >= time.Minute {
				srv.logger.Printf("JOURNAL STILL FAILED: %v; %s", err, d.failedAdvice())
				lastLog = now
			}
		}
	}
}

// resumeJournal retries a failed journal. The journal resumes only when it
// proves itself intact (journal.Local.Resume), and it then hands out again
// the sequences of the records it lost. Those records' effects are in the
// memory tier, with their sequences as CAS, so first every key they
// touched is dropped from memory, as an eviction would: what the key holds
// durably stays in the journal and the backend, and no reader is ever
// served a value that was not acknowledged, even once a new record reuses
// its sequence. Nothing can be appended while the journal is failed, so no
// write races the drop.
//
// Not with the storer in another process (petrel storer): it applies every
// complete record it finds in the files, acknowledged or not, so it may
// already hold a lost record under a sequence that would be reused.
func (srv *Server) resumeJournal(d *durable) error {
	if d.storerExternal() {
		return errors.New("not retried: the storer runs in another process and may have applied the failed records")
	}
	lost := d.j.Lost()
	now := time.Now().Unix()
	flushLost := false
	for _, r := range lost {
		if r.Type == journal.TypeFlushAll {
			flushLost = true // it emptied memory further: nothing to take back
			continue
		}
		srv.cache.Do(r.Key, now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			if l != cache.Hit {
				return it, 0
			}
			return it, cache.OpDelete
		})
	}
	// The sequences above durable come back: no memory state may hold
	// one (touch_hold.go, Cache.RewindCAS).
	durable := d.j.DurableSeq()
	d.touches.forget(durable)
	if mark := srv.cache.RewindCAS(durable); flushLost && mark > durable {
		// Memory applied an immediate flush (a flush_all or a bite) that
		// the journal lost: else a restart would bring back what memory
		// dropped or, for a lost bite, bite itself and drop what is
		// written from now on.
		d.bite.forceBite()
	}
	if err := d.j.Resume(); err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	d.failedLogged.Store(false)
	srv.logger.Printf("JOURNAL RESUMED: writes are accepted again; %d unacknowledged records were lost, and their keys dropped from memory", len(lost))
	return nil
}

// closeDurable flushes and closes the journal (graceful shutdown).
func (srv *Server) closeDurable() {
	d := srv.dur
	if d == nil {
		return
	}
	if d.loading != nil {
		<-d.loading // an --accept-during-warmup load sees closing and stops
	}
	if err := d.j.Close(); err != nil {
		srv.logger.Printf("closing the journal: %v", err)
	}
	srv.closeBacking(d.back)
	_ = d.lock.Unlock()
}

// warm loads the memory tier: the backend's items (be, which has applied
// the journal up to applied; nil for none) and the journal records after
// applied, both at once when they fit in memory (warmParallel), else one
// after the other; nothing below cut (recoverFlush).
func (srv *Server) warm(d *durable, be storage.Backend, applied, cut uint64) error {
	start := time.Now()
	defer func() {
		d.recovery.duration.Store(int64(time.Since(start)))
		d.recovery.done.Store(true)
	}()
	// What Open found is what there is to load: anything appended since is
	// a live write (--accept-during-warmup), already in memory, and the
	// warmGuard keeps loading off what it changed.
	jr := d.j.Recovery()
	end := jr.LastSeq
	first := max(jr.FirstSeq, applied+1)
	if first > applied+1 && be == nil && d.back != nil && d.back.external {
		// Not a loss: the store holds records 1..first-1, but `petrel
		// storer` has it open, and Pebble locks even a read-only open.
		return fmt.Errorf("warm-up: the store is in use by `petrel storer` in another process and cannot be read beside it, "+
			"and the journal starts at sequence %d, after what only the store holds: stop the storer, start the server, "+
			"then start the storer again (nothing is lost)", first)
	}
	if first > applied+1 {
		return fmt.Errorf("warm-up: the journal starts at sequence %d but the store holds only up to %d: records %d..%d are lost",
			first, applied, applied+1, first-1)
	}
	from := max(first, cut)
	p := newProgress(srv)
	defer p.stop()
	srv.reserve(be, from, end)
	if be != nil {
		if workers, storeItems, ok := srv.parallelWarm(d, be); ok {
			return srv.warmParallel(d, be, cut, from, end, p, workers, storeItems)
		}
		if err := srv.warmBackend(d, be, cut, p); err != nil {
			return err
		}
	}
	if end < from {
		srv.logger.Printf("warm-up: no journal records to replay")
		return nil
	}
	jp := p.part("replaying journal", end-from+1)
	if err := srv.replay(d, from, end, jp, nil); err != nil {
		return err
	}
	jp.finish()
	return nil
}

// reserve grows the memory tier's index for what warm-up is about to
// load (cache.Reserve): the store's estimate of its items and the journal
// records to replay, both upper bounds (a journal of overwrites of a few
// keys counts each one), so the sum is capped at what the memory limit
// holds at the store's mean item size.
func (srv *Server) reserve(be storage.Backend, from, end uint64) {
	var n int64
	if end >= from {
		n = int64(end - from + 1)
	}
	if s, ok := be.(storage.Sizer); ok {
		items, bytes := s.LiveSize()
		n += items
		if items > 0 && bytes > 0 {
			per := int64(storage.ItemOverhead) + bytes/items
			n = min(n, srv.cfg.MemoryMB<<20/per)
		}
	}
	srv.cache.Reserve(int(min(n, 1<<40)))
}

// replay applies the journal's records [from, end] to the memory tier.
// With def set (a load beside the store's, warmParallel), the records that
// remove or touch an item are also kept in def, to be applied again once
// the store is loaded.
//
// A flush_all record changes nothing here: a due one is the cut, which
// from and the store's load already honour, and a delayed one is either
// the one warm re-armed or one that a later flush_all replaced.
func (srv *Server) replay(d *durable, from, end uint64, p *progressPart, def *deferred) error {
	r, err := d.j.ReadFrom(from)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	defer r.Close()
	var c loadCounts
	defer c.publish(d, p)
	var rec journal.Record
	now := time.Now().Unix()
	for {
		if err := r.Next(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("warm-up: replaying the journal: %w", err)
		}
		if rec.Seq > end {
			return nil
		}
		if srv.loadStopped() {
			return errShuttingDown
		}
		w := d.warming.Load()
		if w != nil && w.flushedAfter(rec.Seq) {
			return nil // a client flushed everything still to load
		}
		c.records++
		c.progBytes += uint64(journal.EncodedLen(&rec))
		if c.records%loadBatch == 0 {
			c.publish(d, p)
			now = time.Now().Unix()
		}
		if rec.Type == journal.TypeFlushAll {
			continue
		}
		applied := srv.apply(&rec, now, w)
		switch {
		case def != nil && removes(&rec, now):
			def.add(&rec, applied) // counted when applied again
		case !applied:
			c.skipped++
		case rec.Type == journal.TypeSet && !expired(rec.Exptime, now):
			c.items++
			c.bytes += uint64(len(rec.Key) + len(rec.Value))
		}
	}
}

// loadBatch is how many items or records a loader counts before it
// publishes them (the recovery stats and the progress are shared between
// loaders, and one atomic add per item would bounce their cache line).
const loadBatch = 4096

// loadCounts is what one loader has counted since it last published.
type loadCounts struct {
	records, skipped, items, bytes uint64 // for d.recovery
	progItems, progBytes           uint64 // for the progress (store: items scanned)
}

// publish adds the counts to the recovery stats and p, and zeroes them.
func (c *loadCounts) publish(d *durable, p *progressPart) {
	d.recovery.records.Add(c.records)
	d.recovery.skipped.Add(c.skipped)
	d.recovery.items.Add(c.items)
	d.recovery.bytes.Add(c.bytes)
	if p != nil {
		p.add(c.records+c.progItems, c.progBytes)
	}
	*c = loadCounts{}
}

func expired(exptime, now int64) bool { return exptime != 0 && exptime <= now }

// removes reports whether rec may remove or touch an item, rather than
// store one: a delete, a touch, or a set that has expired since (which
// only removes an older version).
func removes(rec *journal.Record, now int64) bool {
	return rec.Type == journal.TypeDelete || rec.Type == journal.TypeTouch ||
		rec.Type == journal.TypeSet && expired(rec.Exptime, now)
}

// apply replays one record of a key (a set, delete or touch; flush_all is
// the caller's) into the memory tier, unless the key already holds a newer
// version (or a client wrote it during warm-up). It reports whether the
// record changed anything.
func (srv *Server) apply(rec *journal.Record, now int64, w *warmGuard) bool {
	applied := false
	_, err := srv.cache.Do(rec.Key, now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if w != nil && w.written(rec.Key, rec.Seq) {
			return it, 0
		}
		hit := l == cache.Hit
		if hit && it.CAS >= rec.Seq {
			return it, 0
		}
		switch rec.Type {
		case journal.TypeSet:
			if expired(rec.Exptime, now) {
				break // expired since: it only removes the older version
			}
			applied = true
			return cache.Item{Key: rec.Key, Value: rec.Value, Flags: rec.Flags, Exptime: rec.Exptime, CAS: rec.CAS, Atime: now},
				cache.OpPut | cache.OpKeepCAS
		case journal.TypeTouch:
			if !hit {
				return it, 0
			}
			if !expired(rec.Exptime, now) {
				applied = true
				it.Exptime = rec.Exptime
				return it, cache.OpMeta
			}
		}
		applied = hit
		if hit {
			return it, cache.OpDelete
		}
		return it, 0
	})
	if err != nil {
		srv.logf(1, "warm-up: %q (sequence %d): %v", rec.Key, rec.Seq, err)
		return false
	}
	return applied
}

// warmGuard remembers what clients changed during an
// --accept-during-warmup load, so that loading skips those keys.
type warmGuard struct {
	mu       sync.Mutex
	keys     map[string]uint64 // key → sequence of its first live write
	flushSeq atomic.Uint64     // a live flush_all's sequence, or 0
}

// mark records a live write of key; the cache holds key's lock.
func (w *warmGuard) mark(key []byte, seq uint64) {
	w.mu.Lock()
	if _, ok := w.keys[string(key)]; !ok {
		w.keys[string(key)] = seq
	}
	w.mu.Unlock()
}

// flushed records a live flush_all.
func (w *warmGuard) flushed(seq uint64) {
	w.flushSeq.CompareAndSwap(0, seq)
}

// written reports whether a client wrote key after seq; the cache holds
// key's lock.
func (w *warmGuard) written(key []byte, seq uint64) bool {
	if w.flushSeq.Load() > seq {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.keys[string(key)]
	return ok && s > seq
}

// flushedAfter reports whether a client flushed everything up to seq.
func (w *warmGuard) flushedAfter(seq uint64) bool {
	return w.flushSeq.Load() > seq
}

// progress reports a long load, for each source being loaded (the store,
// the journal; at once in warmParallel): records, bytes, rate and ETA in
// the log every second, one line per source, and one bar for them all on
// stderr when it is a terminal.
type progress struct {
	srv  *Server
	tty  bool
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu    sync.Mutex // parts, and the terminal between the loop and finish
	parts []*progressPart
}

// progressPart is one source's count.
type progressPart struct {
	p     *progress
	what  string
	total uint64
	start time.Time
	n     atomic.Uint64
	bytes atomic.Uint64
	done  atomic.Bool
}

func newProgress(srv *Server) *progress {
	p := &progress{srv: srv, quit: make(chan struct{})}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		p.tty = true
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

// part starts counting a source of total records.
func (p *progress) part(what string, total uint64) *progressPart {
	pp := &progressPart{p: p, what: what, total: total, start: time.Now()}
	p.mu.Lock()
	p.parts = append(p.parts, pp)
	p.mu.Unlock()
	return pp
}

func (pp *progressPart) add(n, bytes uint64) {
	pp.n.Add(n)
	pp.bytes.Add(bytes)
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.mu.Lock()
			var lines []string
			var n, total uint64
			for _, pp := range p.parts {
				if !pp.done.Load() {
					lines = append(lines, pp.line())
					n += min(pp.n.Load(), pp.total)
					total += pp.total
				}
			}
			if len(lines) > 0 {
				if p.tty {
					// The log shares the terminal: clear the bar, log, redraw.
					fmt.Fprint(os.Stderr, "\r\x1b[K")
				}
				for _, l := range lines {
					p.srv.logger.Printf("warm-up: %s", l)
				}
				if p.tty {
					fmt.Fprintf(os.Stderr, "%s %s", bar(n, total), strings.Join(lines, "; "))
				}
			}
			p.mu.Unlock()
		}
	}
}

// line is "what: n/total records (x%), bytes, rate, ETA".
func (pp *progressPart) line() string {
	n, b := pp.n.Load(), pp.bytes.Load()
	el := time.Since(pp.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	eta := "?"
	if rate > 0 && pp.total >= n {
		eta = (time.Duration(float64(pp.total-n)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if pp.total > 0 {
		pct = 100 * float64(n) / float64(pp.total)
	}
	return fmt.Sprintf("%s: %d/%d records (%.1f%%), %.1f MiB, %.0f records/s, ETA %s",
		pp.what, n, pp.total, pct, float64(b)/(1<<20), rate, eta)
}

func bar(n, total uint64) string {
	const width = 30
	k := width
	if total > 0 {
		k = int(min(n, total) * width / total)
	}
	return "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]"
}

// stop ends the reporting.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
		if p.tty {
			fmt.Fprint(os.Stderr, "\r\x1b[K")
		}
	})
}

// finish logs the source's totals; its progress lines stop.
func (pp *progressPart) finish() {
	if pp.done.Swap(true) {
		return
	}
	took := time.Since(pp.start)
	p := pp.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(os.Stderr, "\r\x1b[K") // the next tick redraws the bar
	}
	if pp.n.Load() == 0 {
		p.srv.logger.Printf("warm-up: %s: nothing to load", pp.what)
		return
	}
	p.srv.logger.Printf("warm-up done: %s in %v", pp.line(), took.Round(time.Millisecond))
}
