package storage

// This file is the contract between the storer and its backends (pebble,
// postgres, dynamodb), and between the server and the backends for
// read-through and warm-up. Backends live in their own files.

import (
	"context"

	"petrel/internal/journal"
)

// Item is what a backend holds for a key. Version is the journal sequence
// of the write that produced it; it only ever goes up.
type Item struct {
	Key     []byte
	Value   []byte
	Flags   uint32
	Exptime int64 // absolute unix seconds, 0 = never
	Version uint64
}

// Backend is a storage backend.
//
// Apply must be idempotent and monotonic per key: a record whose Seq is not
// above the version stored for its key changes nothing, so replaying a batch
// twice, or a stale write racing a newer one, can never take a key back in
// time. A Delete leaves a tombstone carrying its version (removed later), so
// an older Set replayed after it stays deleted. A FlushAll record that is
// not pending (pendingFlush) removes (or hides) every item whose Version <
// Seq; a pending one is kept as the one pending marker, replacing an older
// one, and hides items with Version < Seq once the clock reaches At, until
// a later FlushAll replaces or clears it.
type Backend interface {
	// Apply writes recs (in sequence order) and records the highest Seq as
	// the applied sequence, atomically where the backend allows. recs'
	// Key and Value slices are reused by the storer once Apply returns.
	Apply(ctx context.Context, recs []journal.Record) error
	// AppliedSeq is the highest sequence durably applied (0 for none).
	AppliedSeq(ctx context.Context) (uint64, error)
	// Get reads one live item (read-through). now is unix seconds.
	Get(ctx context.Context, key []byte, now int64) (Item, bool, error)
	// Scan calls fn for every live item (warm-up). fn must copy what it
	// keeps. Order: newest first where the backend can do that cheaply;
	// each backend documents its order.
	Scan(ctx context.Context, now int64, fn func(Item) error) error
	Close() error
}

// PendingFlusher is a backend that tells its pending flush marker and can
// forget it. Every backend is one.
//
// A server starts from the marker as from a flush record of the journal
// (the journal may have let the record go): it re-arms it in memory, or
// bites it at once when it is due, so that it takes effect for good
// rather than being replaced by the next flush_all.
//
// A server starting over a journal whose records after the backend's
// applied sequence hold a flush_all calls DropPendingFlush before the
// warm-up: that record replaces the marker (a later delayed flush) or
// bites it (an immediate one, below whose sequence nothing loads anyway),
// so a marker due by now must not hide what it covers from the warm-up
// or a read-through while the storer catches up. The change may be in
// memory only: the record that replaces the marker is applied before the
// journal lets it go, and a restart before that finds the marker again
// with the record still after the applied sequence, and drops it again.
type PendingFlusher interface {
	// PendingFlush is the marker's sequence and time; seq 0 for none.
	PendingFlush() (seq uint64, at int64)
	DropPendingFlush()
}

// pendingFlush reports whether the flush_all record r is kept as a pending
// marker rather than applied at once (at now, unix seconds). A delayed one
// (Record.Delayed) always is, even applied after its time by a storer that
// is behind: a later flush_all replaces a pending delayed one (memcached's
// rule), the journal may hold that later record not yet applied, and
// applying this one at once would drop what memory still holds. Nothing
// waits on the marker to turn into a floor: when a delayed flush comes
// due, the server journals an immediate one ("the bite",
// internal/server/flush_bite.go) before anything reads past it, and that
// record clears the marker. A record of a version-1 journal does not say
// whether it was delayed, and goes by At: pending while still to come.
func pendingFlush(r *journal.Record, now int64) bool { return r.Delayed || r.At > now }
