package cache

import (
	"fmt"
	"testing"
)

// TestReserve loads items after Reserve: the index does not grow on the
// way, and every item is found.
func TestReserve(t *testing.T) {
	c, err := New(Config{MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50000
	c.Reserve(n)
	sizes := make([]int, len(c.shards))
	for i := range c.shards {
		sizes[i] = len(c.shards[i].slots)
	}
	for i := range n {
		key := fmt.Appendf(nil, "key%d", i)
		if _, err := c.Do(key, 1, func(it Item, l Lookup) (Item, Op) {
			return Item{Key: key, Value: key}, OpPut
		}); err != nil {
			t.Fatal(err)
		}
	}
	grew := 0
	for i := range c.shards {
		if len(c.shards[i].slots) != sizes[i] {
			grew++
		}
	}
	if grew > 0 {
		t.Errorf("%d of %d shards grew after Reserve(%d)", grew, len(c.shards), n)
	}
	checkIndex(t, c)
	if st := c.Stats(); st.CurrItems != n {
		t.Errorf("%d items, want %d", st.CurrItems, n)
	}
}
