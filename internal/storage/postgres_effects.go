package storage

// This file turns a batch of journal records into one effect per key, the
// shape both remote backends (PostgreSQL and DynamoDB) write. Folding in
// memory first means a batch costs one row write per distinct key, however
// many times a hot key was set, and it lets PostgreSQL's ON CONFLICT see
// each key once (it refuses to touch a row twice in one statement).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"

	"petrel/internal/journal"
)

// effectKind is what an effect does to its key.
type effectKind uint8

const (
	effectSet    effectKind = iota // store value, flags and exptime
	effectDelete                   // leave a tombstone
	effectTouch                    // change the exptime of a live item
)

// effect is the net result of a batch's records for one key. Version is the
// sequence of the last record folded in.
type effect struct {
	kind    effectKind
	key     []byte
	value   []byte
	flags   uint32
	exptime int64
	version uint64
}

// flushMark is a flush_all found in a batch.
type flushMark struct {
	seq uint64
	at  int64
}

// above is m's sequence and time, or zeros once floor has passed it: an
// immediate flush after a pending one ends it.
func (m flushMark) above(floor uint64) (uint64, int64) {
	if m.seq < floor {
		return 0, 0
	}
	return m.seq, m.at
}

// folded is a batch reduced to what a backend has to write.
type folded struct {
	// effects holds one effect per key, sorted by key so that concurrent
	// transactions lock rows in the same order.
	effects []effect
	// floor, when non-zero, is an immediate flush_all: every stored item
	// with a version below it goes. Effects are already only those above.
	floor uint64
	// pending, when non-zero, is the last delayed flush_all in the batch.
	pending flushMark
	// maxSeq is the highest sequence in the batch, including skipped ones.
	maxSeq uint64
}

// ErrValueTooLarge is returned by Apply when a value exceeds what the
// backend can store; the server is expected to refuse such a value before
// it is journaled (see DynamoDB's MaxValueSize).
var ErrValueTooLarge = errors.New("storage: value too large for backend")

// foldRecords folds recs (in sequence order). Records below floor are
// dropped: an earlier flush_all or tombstone purge has covered them. now
// decides whether a flush_all is immediate or pending (pendingFlush); a
// later pending one replaces an earlier one.
func foldRecords(recs []journal.Record, floor uint64, now int64) (folded, error) {
	var f folded
	byKey := make(map[string]int, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.Seq > f.maxSeq {
			f.maxSeq = r.Seq
		}
		if r.Seq < floor {
			continue
		}
		if r.Type == journal.TypeFlushAll {
			if pendingFlush(r, now) {
				f.pending = flushMark{seq: r.Seq, at: r.At}
				continue
			}
			// Everything folded so far is older than this flush: drop it.
			floor, f.floor = r.Seq, r.Seq
			f.effects = f.effects[:0]
			clear(byKey)
			// A delayed flush older than this one is now moot.
			if f.pending.seq < r.Seq {
				f.pending = flushMark{}
			}
			continue
		}
		e := effect{key: r.Key, version: r.Seq}
		switch r.Type {
		case journal.TypeSet:
			e.kind, e.value, e.flags, e.exptime = effectSet, r.Value, r.Flags, r.Exptime
		case journal.TypeDelete:
			e.kind = effectDelete
		case journal.TypeTouch:
			e.kind, e.exptime = effectTouch, r.Exptime
		default:
			return folded{}, fmt.Errorf("storage: record %d: unknown type %v", r.Seq, r.Type)
		}
		i, seen := byKey[string(r.Key)]
		if !seen {
			byKey[string(r.Key)] = len(f.effects)
			f.effects = append(f.effects, e)
			continue
		}
		prev := &f.effects[i]
		if e.version <= prev.version {
			continue // out of order within the batch: the newer one stands
		}
		if e.kind == effectTouch {
			switch prev.kind {
			case effectSet, effectTouch:
				prev.exptime, prev.version = e.exptime, e.version
			}
			// A touch after a delete finds nothing to touch.
			continue
		}
		*prev = e
	}
	sort.Slice(f.effects, func(i, j int) bool {
		return string(f.effects[i].key) < string(f.effects[j].key)
	})
	return f, nil
}

// visible reports whether an item stored with version, exptime and
// tombstone is live at now, given a delayed flush that may have come due.
func visible(version uint64, exptime int64, tombstone bool, pending flushMark, now int64) bool {
	if tombstone {
		return false
	}
	if exptime != 0 && exptime <= now {
		return false
	}
	if pending.seq != 0 && pending.at <= now && version < pending.seq {
		return false
	}
	return true
}

// kindError names the kind of a backend error for the storer's retry
// metric (ErrorKinder): "throttled", "unavailable", "timeout", "conflict",
// "too_large" or "error".
type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string     { return e.err.Error() }
func (e *kindError) Unwrap() error     { return e.err }
func (e *kindError) ErrorKind() string { return e.kind }

// withKind wraps a non-nil err with the kind classify gives it.
func withKind(err error, classify func(error) string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &kindError{"timeout", err}
	}
	if errors.Is(err, ErrValueTooLarge) {
		return &kindError{"too_large", err}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &kindError{"unavailable", err}
	}
	return &kindError{classify(err), err}
}
