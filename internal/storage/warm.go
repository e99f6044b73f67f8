package storage

import (
	"context"
	"errors"
	"fmt"
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
