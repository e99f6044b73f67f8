package bench

import (
	"bytes"
	"testing"
)

func TestKeySpace(t *testing.T) {
	f := func(keySize, value string, keys int) {
		t.Helper()
		c := Default()
		c.KeySize, c.Value, c.Keys, c.Verify = keySize, value, keys, true
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
		ks, err := newKeySpace(&c, c.keyDist, c.valDist)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for id := range keys {
			k := ks.appendKey(nil, id)
			if len(k) != ks.keyLenOf(id) || len(k) > MaxKeyLen || bytes.ContainsAny(k, " \r\n") {
				t.Fatalf("%s: key %q of id %d: length %d, want %d", keySize, k, id, len(k), ks.keyLenOf(id))
			}
			if seen[string(k)] {
				t.Fatalf("%s: key %q repeats", keySize, k)
			}
			seen[string(k)] = true
			if got := indexOfKey(ks, []int{id + 1, id}, k); got != 1 {
				t.Fatalf("%s: indexOfKey(%q) = %d, want 1", keySize, k, got)
			}
			v1, v2 := ks.value(id, 1), ks.value(id, 2)
			if len(v1) != ks.valLenOf(id) || len(v1) > c.MaxValue {
				t.Fatalf("%s: value of id %d has length %d, want %d", value, id, len(v1), ks.valLenOf(id))
			}
			if len(v1) > 8 && bytes.Equal(v1, v2) {
				t.Fatalf("%s: versions 1 and 2 of id %d are equal", value, id)
			}
			if !bytes.Equal(v1, ks.value(id, 1)) || checksum(v1) != checksum(ks.value(id, 1)) {
				t.Fatalf("value of id %d is not deterministic", id)
			}
		}
	}
	f("fixed:16", "fixed:100", 1000)
	f("fixed:2", "fixed:0", 1000) // keys grow to fit their id
	f("etc-key", "etc-value", 5000)
	f("twitter-key", "twitter-value", 5000)
	f("uniform:10,250", "uniform:0,20000", 2000)
}
