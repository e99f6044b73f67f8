package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchCache(b *testing.B, keys int) (*Cache, [][]byte) {
	c := newTest(b, Config{MemoryLimit: 256 << 20})
	ks := make([][]byte, keys)
	val := make([]byte, 224)
	for i := range ks {
		ks[i] = fmt.Appendf(nil, "user:profile:%026d", i) // 39 B, the Twitter median is 36
		set(b, c, string(ks[i]), val, 0, 1)
	}
	return c, ks
}

func BenchmarkDo(b *testing.B) {
	const keys = 100_000
	val := make([]byte, 224)
	b.Run("get", func(b *testing.B) {
		c, ks := benchCache(b, keys)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			n := 0
			for pb.Next() {
				c.Do(ks[r.IntN(keys)], 1, func(it Item, l Lookup) (Item, Op) { n += len(it.Value); return it, OpBump })
			}
		})
	})
	b.Run("set", func(b *testing.B) {
		c, ks := benchCache(b, keys)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for pb.Next() {
				c.Do(ks[r.IntN(keys)], 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: val}, OpPut })
			}
		})
		b.ReportMetric(float64(c.Stats().SegmentsEvicted), "segs-evicted")
	})
	b.Run("set-evicting", func(b *testing.B) {
		c := newTest(b, Config{MemoryLimit: 16 << 20})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			key := make([]byte, 0, 32)
			for pb.Next() {
				key = fmt.Appendf(key[:0], "k%d", r.IntN(1_000_000))
				c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: val}, OpPut })
			}
		})
	})
}
