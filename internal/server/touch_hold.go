package server

// Holding readers behind a touch. A touch keeps the item's CAS, as
// memcached's does, so a hit's CAS does not say whether the TTL it shows
// (mg t, me) is durable. Each touch therefore records its sequence in one
// of touchSlots slots, chosen by a hash of the key, and a hit on a key
// whose slot holds a sequence that is not durable yet waits for it. Keys
// that share a slot may wait for each other's touches: a few microseconds
// of an fsync, never a wrong answer.
//
// The common path is one atomic load per hit: the highest sequence of any
// touch, which is at or below DurableSeq unless a touch is in flight; only
// then is the key hashed. The stores happen under the key's cache lock,
// before the new TTL is written back, so a reader of the key, which takes
// the same lock, sees them.

import (
	"hash/maphash"
	"sync/atomic"
)

// touchSlots is how many slots hold touch sequences (a power of two).
const touchSlots = 256

// touchHolds is the slots and their maximum. The zero value is ready.
type touchHolds struct {
	max   atomic.Uint64
	slots [touchSlots]atomic.Uint64
}

// touchSeed hashes keys to slots; the cache's own hash is private to it.
var touchSeed = maphash.MakeSeed()

func touchSlot(key []byte) int { return int(maphash.Bytes(touchSeed, key) & (touchSlots - 1)) }

// note records a journaled touch of key at seq.
func (t *touchHolds) note(key []byte, seq uint64) {
	raise(&t.slots[touchSlot(key)], seq)
	raise(&t.max, seq)
}

// after returns the sequence a hit on key must wait for beyond its CAS: a
// touch in key's slot above durable, or 0.
func (t *touchHolds) after(key []byte, durable uint64) uint64 {
	if t.max.Load() <= durable {
		return 0
	}
	if seq := t.slots[touchSlot(key)].Load(); seq > durable {
		return seq
	}
	return 0
}

// forget drops the sequences above durable. A journal being resumed hands
// out the sequences of its lost records again, and a reader must not wait
// for a lost touch's sequence, which may never be appended again. Call it
// while nothing can be appended, once the keys of the lost records have
// been dropped from memory (resumeJournal): their touches noted under the
// keys' locks, so none notes afterwards.
func (t *touchHolds) forget(durable uint64) {
	for i := range t.slots {
		if t.slots[i].Load() > durable {
			t.slots[i].Store(0)
		}
	}
	if t.max.Load() > durable {
		t.max.Store(0)
	}
}

// raise sets v to seq unless it holds more.
func raise(v *atomic.Uint64, seq uint64) {
	for {
		cur := v.Load()
		if cur >= seq || v.CompareAndSwap(cur, seq) {
			return
		}
	}
}
