package server

// Startup and recovery with a data directory: open the journal (recovering
// a torn tail, refusing mid-journal corruption unless --repair), warm the
// memory tier, replay the journal into it, and only then accept clients.
//
// Replay never lets an older version overwrite a newer one: every item's
// CAS is the journal sequence of the write that produced it, and a record
// is applied to a key only when its sequence is above the CAS found there.
// That is what makes it safe to load the same key from several sources (the
// storage backend's snapshot, then the journal tail) and, with
// --accept-during-warmup, while clients write: a live write always carries
// a sequence above everything being loaded, and a live delete or flush_all
// is remembered (warmGuard) so that loading does not bring back what a
// client removed. A request that finds no item during such a load waits for
// the load to end (s.do), since the item may simply not be loaded yet.
//
// An immediate flush_all in the journal is not replayed as a flush: items
// loaded from the store may be newer than it. A first pass over the journal
// instead finds the last flush_all already due, and loading skips every
// version before it. A delayed flush_all still in the future is re-armed in
// the memory tier. One that has come due since is treated as if it had
// bitten at its own sequence (items written between the command and its
// deadline survive a restart: a documented approximation).

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

// errShuttingDown stops an --accept-during-warmup load at shutdown.
var errShuttingDown = errors.New("shutting down")

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
	j, err := journal.Open(opts)
	if err != nil {
		lock.Unlock()
		if !cfg.Repair {
			return fmt.Errorf("journal %s: %w (to start anyway, cutting the journal there and losing what follows, use --repair)", opts.Dir, err)
		}
		return fmt.Errorf("journal %s: %w", opts.Dir, err)
	}
	rec := j.Recovery()
	srv.logger.Printf("journal %s (%s): %d segments, records %d..%d", opts.Dir, opts.Mode, rec.Segments, rec.FirstSeq, rec.LastSeq)
	d := &durable{cfg: cfg, mode: cfg.mode(), j: j, lock: lock}
	b, be, applied, err := srv.openBacking(d)
	if err == nil {
		err = checkApplied(j, applied)
	}
	if err != nil {
		srv.closeBacking(b)
		j.Close()
		lock.Unlock()
		return fmt.Errorf("storage: %w", err)
	}
	d.back = b
	srv.initBackendUse(d, b)
	srv.dur = d
	srv.bgWG.Add(1)
	go srv.watchJournal(d)
	srv.metrics.reg.MustRegister(&durableCollector{srv: srv})
	load := func() error {
		err := srv.warm(d, be, applied)
		if b.external && be != nil {
			be.Close() // the read-only view; the other process keeps applying
		}
		srv.startStorer(d, b)
		return err
	}
	if !cfg.AcceptDuringWarmup {
		if err := load(); err != nil {
			srv.closeDurable()
			return err
		}
		return nil
	}
	d.warming.Store(&warmGuard{keys: make(map[string]uint64)})
	d.loading = make(chan struct{})
	go func() {
		defer close(d.loading)
		if err := load(); err != nil {
			srv.logger.Printf("warm-up failed, serving with what was loaded: %v", err)
		}
		d.warming.Store(nil)
	}()
	return nil
}

// watchJournal logs a journal failure even when no client is there to
// meet it (a failed background fdatasync in async mode), and reminds the
// log every minute while it lasts.
func (srv *Server) watchJournal(d *durable) {
	defer srv.bgWG.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-srv.stop:
			return
		case now := <-t.C:
			err := d.j.Err()
			if err == nil {
				continue
			}
			if !d.failedLogged.Load() {
				d.noteFailure(srv, err)
				last = now
			} else if now.Sub(last) >= time.Minute {
				srv.logger.Printf("JOURNAL STILL FAILED: %v; restart petrel once the disk is fixed", err)
				last = now
			}
		}
	}
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
// the journal up to applied; nil for none), then the journal records after
// applied.
func (srv *Server) warm(d *durable, be storage.Backend, applied uint64) error {
	start := time.Now()
	defer func() {
		d.recovery.duration.Store(int64(time.Since(start)))
		d.recovery.done.Store(true)
	}()
	end := d.j.DurableSeq()
	first := max(d.j.Recovery().FirstSeq, applied+1)
	if first > applied+1 {
		return fmt.Errorf("warm-up: the journal starts at sequence %d but the store holds only up to %d: records %d..%d are lost",
			first, applied, applied+1, first-1)
	}
	// Scan from the oldest record kept, below what the store has applied
	// too: a delayed flush the store holds must still be re-armed here.
	var cut uint64
	if kept := d.j.Recovery().FirstSeq; end >= kept {
		var pending int64
		var err error
		if cut, pending, err = flushes(d.j, kept, end, start.Unix()); err != nil {
			return err
		}
		if pending != 0 {
			srv.cache.FlushAll(start.Unix(), pending)
		}
	}
	if be != nil {
		if err := srv.warmBackend(d, be, cut); err != nil {
			return err
		}
	}
	if end < first {
		srv.logger.Printf("warm-up: no journal records to replay")
		return nil
	}
	from := max(first, cut)
	p := newProgress(srv, "replaying journal", end-from+1)
	defer p.stop()
	if err := srv.replay(d, from, end, p); err != nil {
		return err
	}
	p.finish()
	return nil
}

// flushes finds the flush_alls in the journal's records [from, end]: cut
// is the sequence of the last one due at now (nothing before it survives;
// 0 for none), and pending the time of a delayed one still to come (0 for
// none), which the memory tier must re-arm since the store it is warmed
// from only hides what such a flush covers once it is due.
func flushes(j *journal.Local, from, end uint64, now int64) (cut uint64, pending int64, err error) {
	r, err := j.ReadFrom(from)
	if err != nil {
		return 0, 0, fmt.Errorf("warm-up: %w", err)
	}
	defer r.Close()
	var rec journal.Record
	for {
		if err := r.Next(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				return cut, pending, nil
			}
			return 0, 0, fmt.Errorf("warm-up: scanning the journal: %w", err)
		}
		if rec.Seq > end {
			return cut, pending, nil
		}
		if rec.Type == journal.TypeFlushAll {
			if rec.At <= now {
				cut, pending = rec.Seq, 0
			} else {
				pending = rec.At // a later flush_all replaces a delayed one, as in memcached
			}
		}
	}
}

// replay applies the journal's records [from, end] to the memory tier.
func (srv *Server) replay(d *durable, from, end uint64, p *progress) error {
	r, err := d.j.ReadFrom(from)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	defer r.Close()
	var rec journal.Record
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
		if srv.closing.Load() {
			return errShuttingDown
		}
		w := d.warming.Load()
		if w != nil && w.flushedAfter(rec.Seq) {
			return nil // a client flushed everything still to load
		}
		applied := srv.apply(&rec, time.Now().Unix(), w)
		d.recovery.records.Add(1)
		if applied && rec.Type == journal.TypeSet {
			d.recovery.items.Add(1)
			d.recovery.bytes.Add(uint64(len(rec.Key) + len(rec.Value)))
		} else if !applied {
			d.recovery.skipped.Add(1)
		}
		p.add(1, uint64(journal.EncodedLen(&rec)))
	}
}

// apply replays one record into the memory tier, unless the key already
// holds a newer version (or a client wrote it during warm-up). It reports
// whether the record changed anything.
func (srv *Server) apply(rec *journal.Record, now int64, w *warmGuard) bool {
	if rec.Type == journal.TypeFlushAll {
		if rec.At > now {
			srv.cache.FlushAll(now, rec.At)
		}
		return true // one due already was handled by the cut (see flushes)
	}
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
			if rec.Exptime != 0 && rec.Exptime <= now {
				break // expired since: it only removes the older version
			}
			applied = true
			return cache.Item{Key: rec.Key, Value: rec.Value, Flags: rec.Flags, Exptime: rec.Exptime, CAS: rec.CAS, Atime: now},
				cache.OpPut | cache.OpKeepCAS
		case journal.TypeTouch:
			if !hit {
				return it, 0
			}
			if rec.Exptime == 0 || rec.Exptime > now {
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
	flushSeq uint64            // a live flush_all's sequence, or 0
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
	w.mu.Lock()
	if w.flushSeq == 0 {
		w.flushSeq = seq
	}
	w.mu.Unlock()
}

// written reports whether a client wrote key after seq; the cache holds
// key's lock.
func (w *warmGuard) written(key []byte, seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.keys[string(key)]
	return ok && s > seq || w.flushSeq > seq
}

// flushedAfter reports whether a client flushed everything up to seq.
func (w *warmGuard) flushedAfter(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushSeq > seq
}

// progress reports a long load: items and bytes, rate and ETA in the log
// every second, and a one-line bar on stderr when it is a terminal.
type progress struct {
	srv   *Server
	what  string
	total uint64
	start time.Time
	n     atomic.Uint64
	bytes atomic.Uint64
	tty   bool
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newProgress(srv *Server, what string, total uint64) *progress {
	p := &progress{srv: srv, what: what, total: total, start: time.Now(), quit: make(chan struct{})}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		p.tty = true
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) add(n, bytes uint64) {
	p.n.Add(n)
	p.bytes.Add(bytes)
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
			line := p.line()
			if p.tty {
				// The log shares the terminal: clear the bar, log, redraw.
				fmt.Fprint(os.Stderr, "\r\x1b[K")
			}
			p.srv.logger.Printf("warm-up: %s", line)
			if p.tty {
				fmt.Fprintf(os.Stderr, "%s %s", p.bar(), line)
			}
		}
	}
}

// line is "n/total records (x%), bytes, rate, ETA".
func (p *progress) line() string {
	n, b := p.n.Load(), p.bytes.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	eta := "?"
	if rate > 0 && p.total >= n {
		eta = (time.Duration(float64(p.total-n)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(n) / float64(p.total)
	}
	return fmt.Sprintf("%s: %d/%d records (%.1f%%), %.1f MiB, %.0f records/s, ETA %s",
		p.what, n, p.total, pct, float64(b)/(1<<20), rate, eta)
}

func (p *progress) bar() string {
	const width = 30
	k := width
	if p.total > 0 {
		k = int(min(p.n.Load(), p.total) * width / p.total)
	}
	return "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]"
}

// stop ends the reporting; finish also logs the totals.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
		if p.tty {
			fmt.Fprint(os.Stderr, "\r\x1b[K")
		}
	})
}

func (p *progress) finish() {
	p.stop()
	if p.n.Load() == 0 {
		p.srv.logger.Printf("warm-up: %s: nothing to load", p.what)
		return
	}
	p.srv.logger.Printf("warm-up done: %s in %v", p.line(), time.Since(p.start).Round(time.Millisecond))
}
