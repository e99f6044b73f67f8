package cache

import "testing"

// checkIndex verifies that every slot is reachable by probing from its key's
// home position, and the live and tombstone counts.
func checkIndex(t *testing.T, c *Cache) {
	t.Helper()
	for si := range c.shards {
		s := &c.shards[si]
		s.mu.Lock()
		live, tombs := 0, 0
		for i, v := range s.slots {
			switch {
			case v == 0:
				continue
			case v == tombstone:
				tombs++
				continue
			}
			live++
			key := c.keyOf(v)
			h := c.hash(key)
			if c.shardOf(h) != s {
				t.Fatalf("shard %d slot %d: key %q belongs to another shard", si, i, key)
			}
			if pos, _ := s.lookup(c, h, key); pos != i {
				t.Fatalf("shard %d slot %d: key %q found at %d", si, i, key, pos)
			}
		}
		if live != s.live || tombs != s.tombs {
			t.Fatalf("shard %d: live %d tombs %d, counted %d %d", si, s.live, s.tombs, live, tombs)
		}
		s.mu.Unlock()
	}
}
