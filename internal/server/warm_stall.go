package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"petrel/internal/storage"
)

// A warm-up scan is one long read, so no per-request deadline bounds it:
// a database that stops answering in the middle (frozen, or a network
// partition that drops packets without a reset) held the start for ever,
// until a signal stopped it. So the scan is watched instead: when the
// store has handed over no item for --backend-timeout while loading is
// still under way, the warm-up is cancelled with errWarmStalled and the
// start fails, saying so. Nothing is lost: the backend and the journal
// keep everything, and the next start loads again. Every item counts, so a
// slow trickle is not a stall; rows the database sends that the backend
// then hides (a due pending flush) do not, a rare stretch that a larger
// --backend-timeout covers. The embedded store is not watched.

// stallWatch returns the watch of a warm-up from d's backend: nil (no
// watch) for the embedded store, which cannot stop answering the way a
// database across a network can, and whose scan passes over tombstones
// and expired items that it hands over to nobody.
func (srv *Server) stallWatch(d *durable) *stallWatch {
	if d.cfg.Backend.kind() == BackendPebble {
		return nil
	}
	return &stallWatch{limit: d.cfg.Backend.timeout()}
}

// errWarmStalled is the cause of a warm-up cancelled by watchStall.
var errWarmStalled = errors.New("the storage backend handed over no item")

// stallWatch counts the items a warm-up scan hands over.
type stallWatch struct {
	items atomic.Int64
	limit time.Duration
}

// watchStall returns ctx's child that is cancelled (cause errWarmStalled)
// once w.items has not moved for w.limit, and a stop for the watch, to be
// called when the store's part of the load is over. The watch checks a
// few times per limit, so it fires between limit and 5/4 of it.
func (w *stallWatch) watch(ctx context.Context) (context.Context, func()) {
	if w == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(w.limit/4, time.Millisecond))
		defer t.Stop()
		last, since := w.items.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if n := w.items.Load(); n != last {
					last, since = n, now
				} else if now.Sub(since) >= w.limit {
					cancel(errWarmStalled)
					return
				}
			}
		}
	}()
	var once atomic.Bool
	return ctx, func() {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
	}
}

// backend returns be with its Scan counted by w. It keeps be's Sizer,
// which storage.Warm asks for.
func (w *stallWatch) backend(be storage.Backend) storage.Backend {
	if w == nil {
		return be
	}
	wb := watchedBackend{Backend: be, w: w}
	if s, ok := be.(storage.Sizer); ok {
		return watchedSizer{wb, s}
	}
	return wb
}

type watchedBackend struct {
	storage.Backend
	w *stallWatch
}

func (b watchedBackend) Scan(ctx context.Context, now int64, fn func(storage.Item) error) error {
	return b.Backend.Scan(ctx, now, func(it storage.Item) error {
		b.w.items.Add(1) // one goroutine scans: uncontended
		return fn(it)
	})
}

type watchedSizer struct {
	watchedBackend
	storage.Sizer
}

// stalled turns err, from a scan under ctx, into the start's error when
// the watch cancelled it.
func (w *stallWatch) stalled(ctx context.Context, err error) error {
	if w == nil || err == nil || !errors.Is(context.Cause(ctx), errWarmStalled) {
		return err
	}
	return fmt.Errorf("warm-up: %w for %v (--backend-timeout) while the store was loading, after %d items: "+
		"is the database still answering? Nothing is lost: the backend and the journal keep every write, "+
		"and the next start loads again (raise --backend-timeout if the backend is only slow)",
		errWarmStalled, w.limit, w.items.Load())
}
