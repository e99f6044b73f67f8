package cache

// TEMPORARY: a mutex+map stand-in so callers can build and test against the
// API while the segment engine is written. The engine replaces this file (the
// same logic makes a good model for its randomized tests).

import "sync"

type stubItem struct {
	it     Item
	stored int64
	seq    uint64
}

// Cache is the memory tier.
type Cache struct {
	mu        sync.Mutex
	cfg       Config
	m         map[string]*stubItem
	cas       uint64
	flushAt   int64
	flushSeq  uint64
	st        Stats
	flushSeq2 uint64
}

// New returns an empty cache.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxItemSize == 0 {
		cfg.MaxItemSize = 1 << 20
	}
	return &Cache{cfg: cfg, m: make(map[string]*stubItem)}, nil
}

func (c *Cache) nextCAS() uint64 {
	if c.cfg.NextCAS != nil {
		return c.cfg.NextCAS()
	}
	c.cas++
	return c.cas
}

// Do: see api.go.
func (c *Cache) Do(key []byte, now int64, fn func(it Item, l Lookup) (Item, Op)) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	si := c.m[string(key)]
	l := Miss
	var cur Item
	if si != nil {
		switch {
		case c.flushAt != 0 && now >= c.flushAt && si.stored <= c.flushAt && si.seq <= c.flushSeq:
			l = Flushed
		case si.it.Exptime != 0 && si.it.Exptime <= now:
			l = Expired
		default:
			l = Hit
			cur = si.it
		}
		if l != Hit {
			delete(c.m, string(key))
			si = nil
		}
	}
	if l != Hit {
		cur = Item{Key: key}
	}
	next, op := fn(cur, l)
	switch {
	case op&OpDelete != 0:
		if si != nil {
			delete(c.m, string(key))
		}
		return 0, nil
	case op&OpPut != 0:
		if len(key)+len(next.Value)+48 > c.cfg.MaxItemSize {
			return 0, ErrTooLarge
		}
		n := &stubItem{it: next, stored: now, seq: c.seq()}
		n.it.Key = append([]byte(nil), key...)
		n.it.Value = append([]byte(nil), next.Value...)
		if op&OpKeepCAS == 0 {
			n.it.CAS = c.nextCAS()
		}
		n.it.Atime = now
		c.m[string(key)] = n
		c.st.TotalItems++
		return n.it.CAS, nil
	}
	if si == nil {
		return 0, nil
	}
	if op&OpMeta != 0 {
		cas := si.it.CAS
		k, v := si.it.Key, si.it.Value
		si.it = next
		si.it.Key, si.it.Value = k, v
		if op&OpKeepCAS == 0 {
			si.it.CAS = cas
		}
	}
	if op&OpBump != 0 {
		si.it.Fetched = true
		si.it.Atime = now
	}
	return si.it.CAS, nil
}

func (c *Cache) seq() uint64 { c.flushSeq2++; return c.flushSeq2 }

// FlushAll: see api.go.
func (c *Cache) FlushAll(now, at int64) {
	c.mu.Lock()
	c.flushAt = at
	c.flushSeq = c.flushSeq2
	if at > now {
		c.flushSeq = ^uint64(0)
	}
	c.mu.Unlock()
}

// Stats: see api.go.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.CurrItems = uint64(len(c.m))
	s.LimitBytes = uint64(c.cfg.MemoryLimit)
	for _, si := range c.m {
		s.Bytes += uint64(len(si.it.Key) + len(si.it.Value) + 48)
	}
	return s
}

// Maintain: see api.go.
func (c *Cache) Maintain(now int64) {}
