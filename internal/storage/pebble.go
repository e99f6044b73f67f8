package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"petrel/internal/journal"
)

// Pebble is the embedded storage backend: an LSM (github.com/cockroachdb/
// pebble, the engine of CockroachDB) with its own write-ahead log turned
// off, because the journal already is the log. This is the unbundling of
// the elastic LSM design: journal → memtable → flush → compaction, where
// the journal lives outside the engine.
//
// Without Pebble's WAL, a batch is durable only once the memtable holding it
// has been flushed to an sstable. The applied sequence is written in the
// same batch as the data, so after a crash Pebble comes back at some
// consistent applied sequence S (data and S from the same flush), and the
// journal after S replays the rest. The journal may therefore be truncated
// only below DurableAppliedSeq, the sequence covered by the last flush the
// storer asked for (Flush), never below AppliedSeq.
//
// Keys (the first byte names the keyspace):
//
//	'd' key              → item: version(8) kind(1) flags(4) exptime(8) value
//	                       kind 1 = live, 2 = tombstone (a delete's version)
//	'f' seq(8, BE)       → a delayed flush_all marker: its At (8)
//	'm' "applied"        → highest sequence applied (8, BE)
//	'm' "flushseq"       → every version below it was flushed away (8, BE)
//	'm' "format"         → format name and version, checked on open
//	'm' "live"           → estimated live items(8) and key+value bytes(8)
//
// An immediate flush_all (At no later than its apply time) deletes the whole
// data keyspace with one range tombstone, and raises flushseq so that no
// older set can come back. A delayed one stays a marker that hides older
// versions once the clock reaches At; a later flush_all of either kind
// replaces it (pendingFlush). Stores written before that rule may hold
// several markers; the next delayed flush leaves one.
type Pebble struct {
	db   *pebble.DB
	opts PebbleOptions

	mu      sync.Mutex // serializes Apply, Flush and Close
	closed  bool
	applied atomic.Uint64
	durable atomic.Uint64
	state   atomic.Pointer[flushState] // read by Get and Scan without the lock
	live    liveStats                  // guarded by mu
	errs    *bgErrors

	// flushMu guards the flush Flush waits for. A flush that failed is
	// still Pebble's to retry, and waited for again, rather than asked
	// for anew: each request queues another memtable.
	flushMu    sync.Mutex
	pending    <-chan struct{}
	pendingSeq uint64
}

// flushState is immutable; Apply replaces it.
type flushState struct {
	floor   uint64        // versions below it are gone
	markers []flushMarker // delayed flushes, by seq
}

type flushMarker struct {
	seq uint64
	at  int64
}

type liveStats struct{ items, bytes int64 }

// PebbleOptions configure OpenPebble. Zero values take the defaults.
type PebbleOptions struct {
	CacheBytes    int64  // block cache; default 64 MiB
	MemTableBytes uint64 // memtable size; default 64 MiB
	ReadOnly      bool
	// ExactLiveSize reads each key before an in-order set or delete, so
	// that LiveSize is exact; by default those are blind writes and
	// LiveSize is an upper bound.
	ExactLiveSize bool
	// Now is the clock, in unix seconds, that decides whether a flush_all
	// is immediate when it is applied; default the wall clock.
	Now func() int64
	// Logf receives Pebble's informational log; nil discards it.
	Logf func(format string, args ...any)
	// ErrorLogf receives Pebble's errors (background errors rate-limited,
	// pebble_errors.go); nil sends them to Logf.
	ErrorLogf func(format string, args ...any)
	// FS is the file system; default the operating system's. Tests
	// inject faults with it.
	FS vfs.FS
	// OnFatal is called with an error Pebble cannot go on from (a failed
	// MANIFEST write, which a full disk causes) and must not return:
	// Pebble continues as if it had not. Default: panic.
	OnFatal func(msg string)
}

const (
	kindLive      = 1
	kindTombstone = 2
	itemHeader    = 8 + 1 + 4 + 8
	pebbleFormat  = "petrel-pebble/1"
)

var (
	metaApplied  = []byte("mapplied")
	metaFlushSeq = []byte("mflushseq")
	metaFormat   = []byte("mformat")
	metaLive     = []byte("mlive")
	dataLower    = []byte{'d'}
	dataUpper    = []byte{'e'}
	markLower    = []byte{'f'}
	markUpper    = []byte{'g'}
)

var _ Backend = (*Pebble)(nil)

// OpenPebble opens (creating if needed) the Pebble store in dir.
func OpenPebble(dir string, opts PebbleOptions) (*Pebble, error) {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().Unix() }
	}
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref()
	errLogf := opts.ErrorLogf
	if errLogf == nil {
		errLogf = opts.Logf
	}
	errs := newBGErrors(errLogf)
	po := &pebble.Options{
		FS:                 opts.FS,
		EventListener:      errs.listener(),
		Cache:              cache,
		DisableWAL:         true,
		MemTableSize:       opts.MemTableBytes,
		ReadOnly:           opts.ReadOnly,
		ErrorIfNotExists:   opts.ReadOnly,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{opts.Logf, errLogf, opts.OnFatal},
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("storage: open pebble %s: %w", dir, err)
	}
	p := &Pebble{db: db, opts: opts, errs: errs}
	if err := p.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open pebble %s: %w", dir, err)
	}
	return p, nil
}

// load reads the meta keys and flush markers.
func (p *Pebble) load() error {
	format, err := p.getMeta(metaFormat)
	if err != nil {
		return err
	}
	switch {
	case format == nil && !p.opts.ReadOnly:
		if err := p.db.Set(metaFormat, []byte(pebbleFormat), pebble.NoSync); err != nil {
			return err
		}
	case format != nil && string(format) != pebbleFormat:
		return fmt.Errorf("unknown format %q (want %q)", format, pebbleFormat)
	}
	applied, err := p.getUint(metaApplied)
	if err != nil {
		return err
	}
	p.applied.Store(applied)
	p.durable.Store(applied)
	st := &flushState{}
	if st.floor, err = p.getUint(metaFlushSeq); err != nil {
		return err
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: markLower, UpperBound: markUpper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			it.Close()
			return fmt.Errorf("corrupt flush marker %x", k)
		}
		st.markers = append(st.markers, flushMarker{binary.BigEndian.Uint64(k[1:]), int64(binary.BigEndian.Uint64(v))})
	}
	if err := it.Close(); err != nil {
		return err
	}
	p.state.Store(st)
	live, err := p.getMeta(metaLive)
	if err != nil {
		return err
	}
	if len(live) == 16 {
		p.live = liveStats{int64(binary.BigEndian.Uint64(live)), int64(binary.BigEndian.Uint64(live[8:]))}
	}
	return nil
}

func (p *Pebble) getMeta(key []byte) ([]byte, error) {
	v, c, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return bytes.Clone(v), nil
}

func (p *Pebble) getUint(key []byte) (uint64, error) {
	v, err := p.getMeta(key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt meta key %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Apply implements Backend. Each record changes its key only if its
// sequence is above the version stored for the key (read through the
// indexed batch, so records of one batch see each other), which makes
// replays and out-of-order batches harmless. The batch is committed without
// sync: it becomes durable at the next Flush.
func (p *Pebble) Apply(ctx context.Context, recs []journal.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("storage: pebble: closed")
	}
	applied := p.applied.Load()
	st := p.state.Load()
	newSt := st
	live := p.live
	b := p.newBatch(recs, applied)
	defer b.Close()
	now := p.opts.Now()
	var kbuf, vbuf []byte
	for i := range recs {
		r := &recs[i]
		if r.Type == journal.TypeFlushAll {
			switch {
			case r.Seq <= newSt.floor:
				// Applied before.
			case pendingFlush(r, now) && r.Seq <= lastMarker(newSt):
				// Applied before, or replaced by a later delayed flush.
			case pendingFlush(r, now):
				// It replaces the markers before it: all of those on disk,
				// also ones DropPendingFlush forgot in memory.
				newSt = &flushState{floor: newSt.floor, markers: []flushMarker{{r.Seq, r.At}}}
				var k [9]byte
				k[0] = 'f'
				binary.BigEndian.PutUint64(k[1:], r.Seq)
				var v [8]byte
				binary.BigEndian.PutUint64(v[:], uint64(r.At))
				if err := errors.Join(b.DeleteRange(markLower, markUpper, nil), b.Set(k[:], v[:], nil)); err != nil {
					return fmt.Errorf("storage: pebble apply %d: %w", r.Seq, err)
				}
			case r.Seq > applied:
				// In order (the storer's case): every stored version is
				// below r.Seq, so the whole keyspace goes, tombstones
				// included, with one range tombstone; the floor keeps
				// older sets from coming back.
				if err := errors.Join(b.DeleteRange(dataLower, dataUpper, nil),
					b.DeleteRange(markLower, markUpper, nil)); err != nil {
					return fmt.Errorf("storage: pebble apply %d: %w", r.Seq, err)
				}
				newSt = &flushState{floor: r.Seq}
				live = liveStats{}
			default:
				// Out of order: newer versions may exist, so only raise
				// the floor, which hides what is below it.
				newSt = &flushState{floor: r.Seq, markers: markersAbove(newSt.markers, r.Seq)}
			}
			applied = max(applied, r.Seq)
			continue
		}
		inOrder := r.Seq > applied
		applied = max(applied, r.Seq)
		if r.Seq < newSt.floor {
			continue
		}
		kbuf = append(append(kbuf[:0], 'd'), r.Key...)
		var cur storedItem
		var found bool
		if !inOrder || r.Type == journal.TypeTouch || p.opts.ExactLiveSize {
			// Out of order, the stored version decides. In order (the
			// storer's case) every stored version is below r.Seq, so a set
			// or delete is a blind write: no read, which is most of the
			// cost of applying.
			var err error
			if cur, found, err = batchItem(b, kbuf); err != nil {
				return fmt.Errorf("storage: pebble apply %d: %w", r.Seq, err)
			}
		}
		if found && cur.version >= r.Seq {
			continue
		}
		wasLive := found && cur.kind == kindLive
		switch r.Type {
		case journal.TypeSet:
			vbuf = encodeItem(vbuf[:0], r.Seq, kindLive, r.Flags, r.Exptime, r.Value)
			live.add(wasLive, cur.size, int64(len(r.Key)+len(r.Value)))
		case journal.TypeDelete:
			vbuf = encodeItem(vbuf[:0], r.Seq, kindTombstone, 0, 0, nil)
			if wasLive {
				live.items--
				live.bytes -= cur.size
			}
		case journal.TypeTouch:
			if !wasLive {
				continue
			}
			vbuf = encodeItem(vbuf[:0], r.Seq, kindLive, cur.flags, r.Exptime, cur.value)
		default:
			return fmt.Errorf("storage: pebble apply %d: unknown record type %v", r.Seq, r.Type)
		}
		if err := b.Set(kbuf, vbuf, nil); err != nil {
			return fmt.Errorf("storage: pebble apply %d: %w", r.Seq, err)
		}
	}
	if b.Empty() && applied == p.applied.Load() && newSt == st {
		return nil
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], applied)
	var lv [16]byte
	binary.BigEndian.PutUint64(lv[:], uint64(live.items))
	binary.BigEndian.PutUint64(lv[8:], uint64(live.bytes))
	err := errors.Join(b.Set(metaApplied, seq[:], nil), b.Set(metaLive, lv[:], nil))
	if newSt.floor != st.floor {
		var f [8]byte
		binary.BigEndian.PutUint64(f[:], newSt.floor)
		err = errors.Join(err, b.Set(metaFlushSeq, f[:], nil))
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("storage: pebble apply up to %d: %w", applied, err)
	}
	p.applied.Store(applied)
	p.state.Store(newSt)
	p.live = live
	return nil
}

// newBatch returns an indexed batch only when some record must read the
// stored version (batchItem): the storer's in-order sets and deletes are
// blind writes, and an indexed batch would insert each of them into a
// second skiplist before the memtable's.
func (p *Pebble) newBatch(recs []journal.Record, applied uint64) *pebble.Batch {
	if p.opts.ExactLiveSize {
		return p.db.NewIndexedBatch()
	}
	for i := range recs {
		if recs[i].Type == journal.TypeTouch || (recs[i].Seq <= applied && recs[i].Type != journal.TypeFlushAll) {
			return p.db.NewIndexedBatch()
		}
		applied = max(applied, recs[i].Seq)
	}
	return p.db.NewBatch()
}

func (l *liveStats) add(wasLive bool, oldSize, newSize int64) {
	if wasLive {
		l.bytes -= oldSize
	} else {
		l.items++
	}
	l.bytes += newSize
}

// lastMarker is the sequence of st's newest marker, 0 for none.
func lastMarker(st *flushState) uint64 {
	if len(st.markers) == 0 {
		return 0
	}
	return st.markers[len(st.markers)-1].seq
}

// markersAbove is the markers after seq: an immediate flush replaces the
// delayed ones before it.
func markersAbove(ms []flushMarker, seq uint64) []flushMarker {
	var out []flushMarker
	for _, m := range ms {
		if m.seq > seq {
			out = append(out, m)
		}
	}
	return out
}

// PendingFlush implements PendingFlusher.
func (p *Pebble) PendingFlush() (uint64, int64) {
	st := p.state.Load()
	if len(st.markers) == 0 {
		return 0, 0
	}
	m := st.markers[len(st.markers)-1]
	return m.seq, m.at
}

// DropPendingFlush implements PendingFlusher, in memory: the record
// that replaces the markers removes them from disk when it is applied.
func (p *Pebble) DropPendingFlush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state.Load()
	p.state.Store(&flushState{floor: st.floor})
}

// storedItem is a decoded data value.
type storedItem struct {
	version uint64
	kind    byte
	flags   uint32
	exptime int64
	value   []byte
	size    int64 // key + value bytes, for the live estimate
}

func encodeItem(dst []byte, version uint64, kind byte, flags uint32, exptime int64, value []byte) []byte {
	var h [itemHeader]byte
	binary.BigEndian.PutUint64(h[0:], version)
	h[8] = kind
	binary.BigEndian.PutUint32(h[9:], flags)
	binary.BigEndian.PutUint64(h[13:], uint64(exptime))
	return append(append(dst, h[:]...), value...)
}

func decodeItem(key, v []byte) (storedItem, error) {
	if len(v) < itemHeader || (v[8] != kindLive && v[8] != kindTombstone) {
		return storedItem{}, fmt.Errorf("storage: pebble: corrupt item %q", key)
	}
	return storedItem{
		version: binary.BigEndian.Uint64(v[0:]),
		kind:    v[8],
		flags:   binary.BigEndian.Uint32(v[9:]),
		exptime: int64(binary.BigEndian.Uint64(v[13:])),
		value:   v[itemHeader:],
		size:    int64(len(key) - 1 + len(v) - itemHeader),
	}, nil
}

// batchItem reads key through an indexed batch, so that a record sees the
// ones before it in the same batch. The value is copied.
func batchItem(b *pebble.Batch, key []byte) (storedItem, bool, error) {
	v, c, err := b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return storedItem{}, false, nil
	}
	if err != nil {
		return storedItem{}, false, err
	}
	defer c.Close()
	it, err := decodeItem(key, v)
	it.value = bytes.Clone(it.value)
	return it, err == nil, err
}

// visible reports whether a live item may be served at now.
func (st *flushState) visible(it *storedItem, now int64) bool {
	if it.kind != kindLive || it.version < st.floor {
		return false
	}
	if it.exptime != 0 && it.exptime <= now {
		return false
	}
	// Markers are few (a later immediate flush clears them) and sorted.
	i := sort.Search(len(st.markers), func(i int) bool { return st.markers[i].seq > it.version })
	for _, m := range st.markers[i:] {
		if m.at <= now {
			return false
		}
	}
	return true
}

// Get implements Backend.
func (p *Pebble) Get(ctx context.Context, key []byte, now int64) (Item, bool, error) {
	k := append([]byte{'d'}, key...)
	v, c, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, fmt.Errorf("storage: pebble get: %w", err)
	}
	defer c.Close()
	it, err := decodeItem(k, v)
	if err != nil {
		return Item{}, false, err
	}
	if !p.state.Load().visible(&it, now) {
		return Item{}, false, nil
	}
	return Item{Key: bytes.Clone(key), Value: bytes.Clone(it.value), Flags: it.flags,
		Exptime: it.exptime, Version: it.version}, true, nil
}

// Scan implements Backend, in key order: Pebble cannot list items newest
// first without a second, version-ordered index, which would double the
// write cost of every set. Warm uses versions to prefer recent items.
func (p *Pebble) Scan(ctx context.Context, now int64, fn func(Item) error) error {
	return p.scanRange(ctx, now, dataLower, dataUpper, fn)
}

// AppliedSeq implements Backend: the highest sequence applied, which
// becomes durable at the next Flush (see DurableAppliedSeq). Right after
// OpenPebble the two are equal.
func (p *Pebble) AppliedSeq(context.Context) (uint64, error) { return p.applied.Load(), nil }

// DurableAppliedSeq is the highest sequence that survives a crash: the
// journal may be truncated below it, and no further.
func (p *Pebble) DurableAppliedSeq() uint64 { return p.durable.Load() }

// LiveSize estimates the live items and their key+value bytes. It is an
// upper bound: in-order sets and deletes are blind writes (see Apply), so
// an overwrite counts as a new item and a delete subtracts nothing, until
// an immediate flush_all resets it; nor are expiry and delayed flushes
// subtracted. With ExactLiveSize, only the last two remain.
func (p *Pebble) LiveSize() (items, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live.items, p.live.bytes
}

// Flush makes everything applied so far durable (a memtable flush) and
// advances DurableAppliedSeq. When Pebble reports a background error
// meanwhile (a full disk), it returns that error rather than wait for a
// flush that Pebble goes on retrying (pebble_errors.go).
func (p *Pebble) Flush() error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	for {
		seq := p.applied.Load()
		if p.pending == nil {
			if seq == p.durable.Load() {
				return nil
			}
			ch, err := p.db.AsyncFlush()
			if err != nil {
				return fmt.Errorf("storage: pebble flush: %w", err)
			}
			p.pending, p.pendingSeq = ch, seq
		}
		if err := p.errs.waitFlush(p.pending); err != nil {
			return fmt.Errorf("storage: pebble flush: %w", err)
		}
		atomicMaxUint64(&p.durable, p.pendingSeq)
		p.pending = nil
	}
}

// Checkpoint writes a consistent copy of the store to dir (which must not
// exist), hard-linking sstables where it can, and returns the applied
// sequence the copy holds and its live items (expiry ignored). The
// memtable is flushed first, so the copy holds everything applied. Apply
// waits meanwhile; reads do not.
func (p *Pebble) Checkpoint(dir string) (seq uint64, items int64, err error) {
	p.mu.Lock()
	if !p.opts.ReadOnly {
		if err := p.Flush(); err != nil {
			p.mu.Unlock()
			return 0, 0, err
		}
	}
	seq, st := p.applied.Load(), p.state.Load()
	snap := p.db.NewSnapshot() // the same state as the checkpoint, to count
	err = p.db.Checkpoint(dir)
	p.mu.Unlock()
	defer snap.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("storage: pebble checkpoint %s: %w", dir, err)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: pebble checkpoint: count: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return 0, 0, fmt.Errorf("storage: pebble checkpoint: count: %w", err)
		}
		s, err := decodeItem(it.Key(), v)
		if err != nil {
			it.Close()
			return 0, 0, err
		}
		if st.visible(&s, 0) {
			items++
		}
	}
	return seq, items, it.Close()
}

// Close flushes (there is no WAL to recover the memtable from) and closes.
func (p *Pebble) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	if !p.opts.ReadOnly {
		err = p.Flush()
	}
	return errors.Join(err, p.db.Close())
}

// pebbleLogger routes Pebble's log to Logf and ErrorLogf. A fatal error
// goes to OnFatal, and panics if that returns: Pebble expects Fatalf to
// stop it.
type pebbleLogger struct {
	logf, errLogf func(string, ...any)
	onFatal       func(string)
}

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.logf != nil {
		l.logf("pebble: "+format, args...)
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.errLogf != nil {
		l.errLogf("pebble: error: "+format, args...)
	}
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.onFatal != nil {
		l.onFatal(msg)
	}
	panic("pebble: " + msg)
}
