package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ItemOverhead approximates what the memory tier spends per item beyond
// its key and value (header, index slot), for Warm's limit.
const ItemOverhead = 48

// Sizer is a backend that can estimate its live data without a scan.
type Sizer interface {
	LiveSize() (items, bytes int64)
}

// warmBuckets is how finely Warm divides the version range when the store
// holds more than fits.
const warmBuckets = 4096

var errWarmFull = errors.New("warm: limit reached")

// Warm loads live items from b into the memory tier through fn, up to
// limitBytes (key + value + ItemOverhead per item; ≤ 0 means no limit),
// calling progress every few thousand items and once at the end.
//
// Order: where everything fits (the backend's Sizer says so, or there is
// no limit) it is one pass in the backend's Scan order. Where it does not,
// Warm prefers recently written items without a second index, at the cost
// of a second sequential pass: the first pass builds a histogram of bytes
// by version (versions are journal sequences, so they order writes in
// time), which gives the oldest version that still fits; the second loads
// only items at or above it. Recency is thus honoured to 1/4096 of the
// sequence range, and the items loaded are the most recently written ones
// (by last set, touch or incr), never a key-order prefix.
func Warm(ctx context.Context, b Backend, now int64, limitBytes int64, fn func(Item) error, progress func(items, bytes int64)) error {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	cutoff := uint64(0)
	if limitBytes > 0 {
		fits := false
		if s, ok := b.(Sizer); ok {
			items, bytes := s.LiveSize()
			fits = bytes+items*ItemOverhead <= limitBytes
		}
		if !fits {
			var err error
			if cutoff, err = warmCutoff(ctx, b, now, limitBytes); err != nil {
				return err
			}
		}
	}
	var items, bytes int64
	err := b.Scan(ctx, now, func(it Item) error {
		if it.Version < cutoff {
			return nil
		}
		size := int64(len(it.Key)+len(it.Value)) + ItemOverhead
		if limitBytes > 0 && bytes+size > limitBytes {
			return errWarmFull
		}
		if err := fn(it); err != nil {
			return err
		}
		items++
		bytes += size
		if items%4096 == 0 {
			progress(items, bytes)
		}
		return nil
	})
	progress(items, bytes)
	if err != nil && !errors.Is(err, errWarmFull) {
		return fmt.Errorf("storage: warm: %w", err)
	}
	return nil
}

// warmCutoff returns the lowest version such that the items at or above
// it fit in limit.
func warmCutoff(ctx context.Context, b Backend, now int64, limit int64) (uint64, error) {
	top, err := b.AppliedSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: warm: %w", err)
	}
	width := top/warmBuckets + 1
	var hist [warmBuckets]int64
	err = b.Scan(ctx, now, func(it Item) error {
		i := min(it.Version/width, warmBuckets-1)
		hist[i] += int64(len(it.Key)+len(it.Value)) + ItemOverhead
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: warm: sizing pass: %w", err)
	}
	var sum int64
	for i := warmBuckets - 1; i >= 0; i-- {
		if sum+hist[i] > limit {
			return uint64(i+1) * width, nil
		}
		sum += hist[i]
	}
	return 0, nil
}

// A ScanPart scans one of the disjoint key ranges ScanParts divides a
// backend into; it is called like Backend.Scan.
type ScanPart func(ctx context.Context, now int64, fn func(Item) error) error

// ScanParts divides b's live items into at most n key ranges of about the
// same size, so that several goroutines can load them at once (warm-up on
// a multi-core machine): together the parts yield exactly what b.Scan
// yields, each key in one part. A backend that cannot split, or holds too
// little to split, gives one part: its Scan.
func ScanParts(b Backend, n int) []ScanPart {
	p, ok := b.(*Pebble)
	if !ok || n < 2 {
		return []ScanPart{b.Scan}
	}
	keys := p.splitKeys(n)
	parts := make([]ScanPart, 0, len(keys)+1)
	lower := dataLower
	for _, k := range append(keys, dataUpper) {
		lo, hi := lower, k
		parts = append(parts, func(ctx context.Context, now int64, fn func(Item) error) error {
			return p.scanRange(ctx, now, lo, hi, fn)
		})
		lower = k
	}
	return parts
}

// scanRange is Scan over the data keys in [lower, upper).
func (p *Pebble) scanRange(ctx context.Context, now int64, lower, upper []byte, fn func(Item) error) error {
	st := p.state.Load()
	it, err := p.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("storage: pebble scan: %w", err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("storage: pebble scan: %w", err)
		}
		s, err := decodeItem(it.Key(), v)
		if err != nil {
			it.Close()
			return err
		}
		if !st.visible(&s, now) {
			continue
		}
		if err := fn(Item{Key: it.Key()[1:], Value: s.value, Flags: s.flags, Exptime: s.exptime, Version: s.version}); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: pebble scan: %w", err)
	}
	return nil
}

// splitKeys returns up to n-1 increasing data keys that cut the data
// keyspace into ranges of about equal size on disk. Keys are arbitrary
// bytes, so it reads the 8 bytes after the prefix that the first and last
// keys share as a number and bisects that interval with Pebble's own
// estimate of the bytes below a key (EstimateDiskUsage, which looks into
// the sstables' index blocks, so it sees through overlapping L0 files).
// Keys with little entropy there (a long common part past the shared
// prefix) only make the parts less even; they stay disjoint and complete.
func (p *Pebble) splitKeys(n int) [][]byte {
	total, err := p.db.EstimateDiskUsage(dataLower, dataUpper)
	if err != nil || total == 0 || total < splitMinBytes {
		return nil
	}
	first, last, err := p.dataBounds()
	if err != nil || first == nil {
		return nil
	}
	pre := 0
	for pre < len(first) && pre < len(last) && first[pre] == last[pre] {
		pre++
	}
	num := func(k []byte) uint64 {
		var b [8]byte
		copy(b[:], k[pre:])
		return binary.BigEndian.Uint64(b[:])
	}
	key := func(x uint64) []byte {
		return binary.BigEndian.AppendUint64(bytes.Clone(first[:pre:pre]), x)
	}
	lo, hi := num(first), num(last)
	if lo >= hi {
		return nil // one key, or nothing to tell the keys apart in those 8 bytes
	}
	var keys [][]byte
	for i := 1; i < n; i++ {
		want := total / uint64(n) * uint64(i)
		a, b := lo, hi
		for range 24 { // the smallest x in [a, b] with at least want below key(x), to 2^-24 of the interval
			if a >= b {
				break
			}
			m := a + (b-a)/2
			u, err := p.db.EstimateDiskUsage(dataLower, key(m))
			if err != nil {
				return nil
			}
			if u < want {
				a = m + 1
			} else {
				b = m
			}
		}
		k := key(a)
		if bytes.Compare(k, first) > 0 && (len(keys) == 0 || bytes.Compare(k, keys[len(keys)-1]) > 0) {
			keys = append(keys, k)
		}
	}
	return keys
}

// splitMinBytes is the least a store must hold on disk to be split: below
// it, one goroutine loads it in a few milliseconds.
var splitMinBytes uint64 = 1 << 20 // a variable for the tests

// dataBounds returns the first and last data keys (nil when there are
// none), copied.
func (p *Pebble) dataBounds() (first, last []byte, err error) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
	if err != nil {
		return nil, nil, err
	}
	if it.First() {
		first = bytes.Clone(it.Key())
	}
	if it.Last() {
		last = bytes.Clone(it.Key())
	}
	if err := it.Close(); err != nil {
		return nil, nil, err
	}
	if first == nil || last == nil {
		return nil, nil, nil
	}
	return first, last, nil
}
