package server

// Read-through (--read-through=on): a request that misses in memory and
// would change nothing on a miss (get, gets, gat, touch, incr, cas, mg, …)
// reads the storage backend, caches what it holds, and runs again on it.
// It is the look-aside cache pattern moved into the server, as Facebook's
// memcache paper (NSDI'13) describes it for clients, with its two hazards
// handled here instead of by leases:
//
//   - Thundering herd: concurrent misses on one key make one backend read
//     (a singleflight keyed by key); the others wait for it and then find
//     the key cached.
//   - Stale sets: a value read from the backend is cached only if no
//     mutation of its key (nor a flush_all) was journaled while it was
//     being read, and only into an empty slot: a newer item in memory is
//     never overwritten. The check and the insert happen under the cache's
//     key lock, as the mutations' journaling does, so no mutation slips
//     between them.
//
// The backlog. In write-behind mode the journal holds writes the backend
// has not applied yet. A key evicted from memory while its last write is
// still in that backlog would read back older from the backend. So a
// read-through first waits until the storer has applied the journal up to
// the last sequence appended when the read began (cheap when the storer
// keeps up). A mutation journaled after that point marks the read, which is
// then not cached. If the wait or the backend read exceeds
// BackendConfig.ReadThroughWait (the backend down), the request is served
// as the miss it was: a cache may miss; it must not serve stale data.
//
// A delete of an absent key reads through too (it changes nothing in
// memory): the key is loaded, then deleted and the delete journaled, so
// that the backend loses it as well. Writes that succeed on an absent key
// (set, add, mg with N) do not read the backend: they do not depend on what
// it holds — except add, which then succeeds over a key the backend holds
// (docs/backends.md).
// Negative results ("the backend has no such key") are cached only with
// --negative-cache-ttl, and forgotten on any mutation of the key.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/cache"
	"petrel/internal/storage"
)

// negativeMax bounds the negative cache; it is cleared when full.
const negativeMax = 1 << 16

// readThrough is the server's read-through state.
type readThrough struct {
	srv    *Server
	d      *durable
	be     storage.Backend
	negTTL time.Duration
	wait   time.Duration

	mu       sync.Mutex
	flights  map[string]*flight
	nflights atomic.Int32
	neg      map[string]time.Time // key → when its negative entry expires
	nneg     atomic.Int32

	st readThroughStats
}

// readThroughStats are cumulative counters, in `stats` and /metrics.
type readThroughStats struct {
	reads    atomic.Uint64 // backend reads (one per flight)
	hits     atomic.Uint64 // reads that found the key
	misses   atomic.Uint64 // reads that did not
	errors   atomic.Uint64 // reads that failed or timed out (served as misses)
	shared   atomic.Uint64 // misses that waited for another request's read
	negHits  atomic.Uint64 // misses answered by the negative cache
	discards atomic.Uint64 // reads not cached: the key was written meanwhile
}

// flight is one backend read of a key, shared by concurrent misses.
type flight struct {
	done   chan struct{}
	dirty  atomic.Bool // a mutation of the key was journaled meanwhile
	failed bool        // the backend did not answer; set before done closes
}

func newReadThrough(srv *Server, d *durable, be storage.Backend) *readThrough {
	bc := d.cfg.Backend
	return &readThrough{srv: srv, d: d, be: be, negTTL: bc.NegativeTTL, wait: bc.readThroughWait(),
		flights: make(map[string]*flight), neg: make(map[string]time.Time)}
}

// shouldLoad reports whether a miss on key should read the backend: not
// when a fresh negative entry says the backend has no such key.
func (rt *readThrough) shouldLoad(key []byte) bool {
	if rt.nneg.Load() == 0 {
		return true
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	exp, ok := rt.neg[string(key)]
	if !ok {
		return true
	}
	if time.Now().Before(exp) {
		rt.st.negHits.Add(1)
		return false
	}
	delete(rt.neg, string(key))
	rt.nneg.Add(-1)
	return true
}

// wrote is called, under key's cache lock, when a mutation of key has been
// journaled: a read of key in flight must not cache what it reads, and a
// negative entry is now wrong.
func (rt *readThrough) wrote(key []byte) {
	if rt.nflights.Load() == 0 && rt.nneg.Load() == 0 {
		return
	}
	rt.mu.Lock()
	if f := rt.flights[string(key)]; f != nil {
		f.dirty.Store(true)
	}
	if _, ok := rt.neg[string(key)]; ok {
		delete(rt.neg, string(key))
		rt.nneg.Add(-1)
	}
	rt.mu.Unlock()
}

// flushed is wrote for every key (flush_all).
func (rt *readThrough) flushed() {
	rt.mu.Lock()
	for _, f := range rt.flights {
		f.dirty.Store(true)
	}
	clear(rt.neg)
	rt.nneg.Store(0)
	rt.mu.Unlock()
}

// load reads key from the backend and caches it, or joins the read in
// flight. It never holds a cache lock while it waits. It reports false
// when the backend did not answer (down, or behind the journal for longer
// than --read-through-wait): what it holds for key is then unknown.
func (rt *readThrough) load(key []byte) (answered bool) {
	k := string(key)
	rt.mu.Lock()
	if f := rt.flights[k]; f != nil {
		rt.mu.Unlock()
		rt.st.shared.Add(1)
		<-f.done
		return !f.failed
	}
	f := &flight{done: make(chan struct{})}
	rt.flights[k] = f
	rt.nflights.Add(1)
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		delete(rt.flights, k)
		rt.nflights.Add(-1)
		rt.mu.Unlock()
		close(f.done)
	}()
	// A reader that missed in memory may get here after the previous
	// leader cached the key and retired its flight (it caches before it
	// retires): look once more, so that such a late reader makes no
	// second backend read.
	hit := false
	_, _ = rt.srv.cache.Do(key, time.Now().Unix(), func(cur cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		hit = l == cache.Hit
		return cur, 0
	})
	if hit {
		return true
	}
	// Registered first, then the target read: a write journaled after
	// this point marks f; one before it is at most target, which the
	// backend will have applied when we read it.
	target := rt.d.j.LastSeq()
	ctx, cancel := context.WithTimeout(context.Background(), rt.wait)
	defer cancel()
	it, found, err := rt.read(ctx, key, target)
	if err != nil {
		rt.st.errors.Add(1)
		rt.srv.logf(1, "read-through %q: %v", key, err)
		f.failed = true // before close(f.done), which the followers wait on
		return false
	}
	now := time.Now()
	if !found {
		rt.st.misses.Add(1)
		if rt.negTTL > 0 {
			rt.remember(key, f, now.Add(rt.negTTL))
		}
		return true
	}
	rt.st.hits.Add(1)
	_, _ = rt.srv.cache.Do(key, now.Unix(), func(cur cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l == cache.Hit {
			return cur, 0 // newer than the backend's, or as new
		}
		if f.dirty.Load() {
			rt.st.discards.Add(1)
			return cur, 0
		}
		return cache.Item{Key: key, Value: it.Value, Flags: it.Flags, Exptime: it.Exptime, CAS: it.Version, Atime: now.Unix()},
			cache.OpPut | cache.OpKeepCAS
	})
	return true
}

// read waits for the storer to apply the journal up to target, then reads
// the backend.
func (rt *readThrough) read(ctx context.Context, key []byte, target uint64) (storage.Item, bool, error) {
	if st := rt.d.storer(); st != nil {
		if err := st.WaitApplied(ctx, target); err != nil {
			if ctx.Err() != nil {
				return storage.Item{}, false, fmt.Errorf("the backend has not applied the journal up to sequence %d after %v: %w", target, rt.wait, err)
			}
			return storage.Item{}, false, err
		}
	}
	rt.st.reads.Add(1)
	it, found, err := rt.be.Get(ctx, key, time.Now().Unix())
	if err != nil {
		return storage.Item{}, false, fmt.Errorf("backend get: %w", err)
	}
	return it, found, nil
}

// remember caches "the backend has no such key" until exp, unless key was
// written meanwhile; under key's cache lock, as wrote runs.
func (rt *readThrough) remember(key []byte, f *flight, exp time.Time) {
	_, _ = rt.srv.cache.Do(key, time.Now().Unix(), func(cur cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l == cache.Hit || f.dirty.Load() {
			return cur, 0
		}
		rt.mu.Lock()
		if len(rt.neg) >= negativeMax {
			clear(rt.neg)
			rt.nneg.Store(0)
		}
		if _, ok := rt.neg[string(key)]; !ok {
			rt.nneg.Add(1)
		}
		rt.neg[string(key)] = exp
		rt.mu.Unlock()
		return cur, 0
	})
}
