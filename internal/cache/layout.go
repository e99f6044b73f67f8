package cache

// Item layout inside a segment. Items lie back to back with no padding: a
// 23-byte header, the client flags only when they are non-zero (memcached
// stores them the same way), the key, then the value. The header is encoded
// little-endian with encoding/binary rather than overlaid with unsafe, which
// keeps the code portable, unaligned reads cheap (amd64 and arm64 do them in
// one instruction) and the race detector's view of memory byte-exact.
//
//	 0  u8  key length (keys are at most 255 bytes; the protocols allow 250)
//	 1  u8  bits: fetched, stale, win sent
//	 2  u8  frequency mark for eviction (hits since written, at most one per second)
//	 3  u32 value length, with bit 31 set when client flags follow the header
//	 7  u64 CAS
//	15  u32 exptime (absolute unix seconds; 0 = never)
//	19  u32 atime (unix seconds)
//	23  u32 client flags, only when bit 31 of the value length is set
//
// Bytes 0 and 3..6 never change once written, so eviction can read an
// item's size without the lock of the key (it has not hashed the key yet);
// the mutable bits and frequency have bytes of their own.
//
// What the header does without: memcached 1.6's is 48 B (56 B with CAS) and
// Segcache's 5 B (no CAS, flags or times per item). Petrel needs the CAS,
// exptime and atime for the protocols, so it keeps those. It drops the store
// sequence and store time that earlier versions used to order items against
// flush_all: CAS values only grow (the counter, Config.NextCAS and kept CAS
// values all raise one high-water mark), so a flush records the CAS
// high-water mark and invalidates the items at or below it (see flush.go).
// Times are u32 unix seconds, which last until 2106; a negative exptime is
// stored as 1 (long expired) and one past 2106 as 2106.

import (
	"encoding/binary"
	"math"
)

const (
	hdrSize   = 23
	flagsSize = 4
	// maxKeyLen is what the u8 key length holds; the protocols limit keys
	// to 250 bytes anyway, and a longer key is refused with ErrTooLarge.
	maxKeyLen = math.MaxUint8

	hKlen  = 0
	hBits  = 1
	hFreq  = 2
	hVlen  = 3
	hCAS   = 7
	hExp   = 15
	hAtime = 19
	hFlags = 23

	vlenFlags = 1 << 31 // in the value length word: client flags follow

	bitFetched = 1 << 0
	bitStale   = 1 << 1
	bitWinSent = 1 << 2
)

var le = binary.LittleEndian

// header is an item header decoded.
type header struct {
	cas      uint64
	exp      int64
	flags    uint32
	atime    uint32
	bits     uint8
	freq     uint8
	hasFlags bool // the item has room for non-zero client flags
	klen     int
	vlen     int
}

// itemSize is the bytes an item occupies in a segment.
func itemSize(klen, vlen int, hasFlags bool) int {
	n := hdrSize + klen + vlen
	if hasFlags {
		n += flagsSize
	}
	return n
}

func (h *header) size() int { return itemSize(h.klen, h.vlen, h.hasFlags) }

// ItemSize is the bytes an item with this key and value length, and client
// flags, occupies in a segment: what a miss-ratio curve in bytes of cache
// should count per item.
func ItemSize(klen, vlen int, flags uint32) int { return itemSize(klen, vlen, flags != 0) }

// encExp maps an exptime to its u32 form: 0 stays 0 (never), anything in
// the past before 1970 becomes 1 (expired), anything after 2106 is capped.
func encExp(e int64) uint32 {
	switch {
	case e == 0:
		return 0
	case e < 1:
		return 1
	case e > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(e)
}

// putHeader writes a whole header; h.hasFlags decides the layout, and must
// be set if h.flags is non-zero.
func putHeader(b []byte, h *header) {
	vl := uint32(h.vlen)
	if h.hasFlags {
		vl |= vlenFlags
		le.PutUint32(b[hFlags:], h.flags)
	}
	_ = b[hdrSize-1]
	b[hKlen] = uint8(h.klen)
	b[hBits] = h.bits
	b[hFreq] = h.freq
	le.PutUint32(b[hVlen:], vl)
	le.PutUint64(b[hCAS:], h.cas)
	le.PutUint32(b[hExp:], encExp(h.exp))
	le.PutUint32(b[hAtime:], h.atime)
}

func getHeader(b []byte) header {
	_ = b[hdrSize-1]
	vl := le.Uint32(b[hVlen:])
	h := header{
		cas:      le.Uint64(b[hCAS:]),
		exp:      int64(le.Uint32(b[hExp:])),
		atime:    le.Uint32(b[hAtime:]),
		bits:     b[hBits],
		freq:     b[hFreq],
		hasFlags: vl&vlenFlags != 0,
		klen:     int(b[hKlen]),
		vlen:     int(vl &^ vlenFlags),
	}
	if h.hasFlags {
		h.flags = le.Uint32(b[hFlags:])
	}
	return h
}

// lens reads only the immutable part of a header: the key and value
// lengths and where the key starts.
func lens(b []byte) (klen, vlen, koff int) {
	vl := le.Uint32(b[hVlen:])
	koff = hdrSize
	if vl&vlenFlags != 0 {
		koff += flagsSize
	}
	return int(b[hKlen]), int(vl &^ vlenFlags), koff
}

// itemKey and itemValue slice an item's key and value; the value's capacity
// is clipped so that an append by a caller cannot run into the next item.
func itemKey(b []byte) []byte {
	klen, _, koff := lens(b)
	return b[koff : koff+klen : koff+klen]
}

func itemValue(b []byte) []byte {
	klen, vlen, koff := lens(b)
	s := koff + klen
	return b[s : s+vlen : s+vlen]
}

// writeMeta stores the header fields that OpMeta and OpBump change in place.
// The flags are written only if the item has room for them; the caller
// relocates an item whose flags become non-zero (Cache.Do).
func writeMeta(b []byte, h *header) {
	_ = b[hdrSize-1]
	b[hBits] = h.bits
	b[hFreq] = h.freq
	le.PutUint64(b[hCAS:], h.cas)
	le.PutUint32(b[hExp:], encExp(h.exp))
	le.PutUint32(b[hAtime:], h.atime)
	if h.hasFlags {
		le.PutUint32(b[hFlags:], h.flags)
	}
}

func bitsOf(it *Item) uint8 {
	var b uint8
	if it.Fetched {
		b |= bitFetched
	}
	if it.Stale {
		b |= bitStale
	}
	if it.WinSent {
		b |= bitWinSent
	}
	return b
}
