package analyze

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestSpaceSavingSkewed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	z := rand.NewZipf(rng, 1.2, 1, 100000)
	ss := newSpaceSaving(200)
	exact := map[string]uint64{}
	for range 300000 {
		k := fmt.Sprintf("key%d", z.Uint64())
		exact[k]++
		ss.add(keyHash([]byte(k)), []byte(k))
	}
	type kc struct {
		k string
		c uint64
	}
	var all []kc
	for k, c := range exact {
		all = append(all, kc{k, c})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].c > all[j].c || all[i].c == all[j].c && all[i].k < all[j].k })
	top := ss.top(10)
	for i, e := range top {
		if e.Key != all[i].k {
			t.Fatalf("rank %d: %q, exact %q", i+1, e.Key, all[i].k)
		}
		if tc := exact[e.Key]; e.Count < tc || e.Count-e.Error > tc {
			t.Fatalf("%q: count %d error %d, exact %d", e.Key, e.Count, e.Error, tc)
		}
	}
}

func TestSpaceSavingSmall(t *testing.T) {
	f := func(stream string, k int, want []KeyCount) {
		t.Helper()
		ss := newSpaceSaving(k)
		for _, c := range stream {
			ss.add(uint64(c), []byte{byte(c)})
		}
		got := ss.top(len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q k=%d: %v, want %v", stream, k, got, want)
		}
	}
	f("aab", 2, []KeyCount{{"a", 2, 0}, {"b", 1, 0}})
	f("aabc", 2, []KeyCount{{"a", 2, 0}, {"c", 2, 1}})
	f("abcabca", 3, []KeyCount{{"a", 3, 0}, {"b", 2, 0}, {"c", 2, 0}})
}
