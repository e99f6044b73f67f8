//go:build unix && !race

package cache

import (
	"fmt"
	"testing"
)

// TestMappedIndex maps every index table above 32 slots, so that growth,
// lookups and Close go through mapped tables.
func TestMappedIndex(t *testing.T) {
	defer func(n int) { mapSlotsMin = n }(mapSlotsMin)
	mapSlotsMin = 32
	c := newTest(t, Config{})
	for i := range 20000 {
		set(t, c, fmt.Sprint("k", i), fmt.Append(nil, i), 0, 1)
	}
	for i := range 20000 {
		if v, l := get(c, fmt.Sprint("k", i), 1); l != Hit || string(v) != fmt.Sprint(i) {
			t.Fatalf("k%d: %v %q", i, l, v)
		}
	}
	mapped := 0
	for i := range c.shards {
		if c.shards[i].mapped {
			mapped++
		}
	}
	if mapped == 0 {
		t.Fatal("no shard table was mapped")
	}
	checkIndex(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
