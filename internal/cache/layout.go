package cache

// Item layout inside a segment. Every item is a fixed 48-byte header, then
// the key, then the value, padded to 8 bytes so that the next header is
// aligned. The header is encoded little-endian with encoding/binary rather
// than overlaid with unsafe, which keeps the code portable and the race
// detector's view of memory byte-exact.
//
//	 0  u64 CAS
//	 8  u64 store sequence (orders items against flush_all in the same second)
//	16  i64 exptime (absolute unix seconds; 0 = never)
//	24  u32 client flags
//	28  u32 store time (unix seconds)
//	32  u32 atime (unix seconds)
//	36  u8  bits: fetched, stale, win sent
//	37  u8  frequency mark for eviction (hits since written, at most one per second)
//	38  2 bytes unused
//	40  u16 key length    } immutable after the item is written, in their own
//	44  u32 value length  } 8-byte word so eviction can read them unlocked
//
// memcached's header is 48 B (56 B with CAS); Segcache's is 5 B but it keeps
// no CAS, flags or times per item. Petrel needs all of them for the protocol.

import "encoding/binary"

const (
	hdrSize = 48
	// maxKeyLen is what the u16 key length can hold; the protocols limit
	// keys to 250 bytes anyway.
	maxKeyLen = 1<<16 - 1

	hCAS   = 0
	hSeq   = 8
	hExp   = 16
	hFlags = 24
	hStime = 28
	hAtime = 32
	hBits  = 36
	hFreq  = 37
	hKlen  = 40
	hVlen  = 44

	bitFetched = 1 << 0
	bitStale   = 1 << 1
	bitWinSent = 1 << 2
)

var le = binary.LittleEndian

// header is an item header decoded.
type header struct {
	cas   uint64
	seq   uint64
	exp   int64
	flags uint32
	stime uint32
	atime uint32
	bits  uint8
	freq  uint8
	klen  int
	vlen  int
}

// itemSize is the bytes an item occupies in a segment, padding included.
func itemSize(klen, vlen int) int { return align8(hdrSize + klen + vlen) }

func align8(n int) int { return (n + 7) &^ 7 }

func (h header) size() int { return itemSize(h.klen, h.vlen) }

func putHeader(b []byte, h *header) {
	_ = b[hdrSize-1]
	le.PutUint64(b[hCAS:], h.cas)
	le.PutUint64(b[hSeq:], h.seq)
	le.PutUint64(b[hExp:], uint64(h.exp))
	le.PutUint32(b[hFlags:], h.flags)
	le.PutUint32(b[hStime:], h.stime)
	le.PutUint32(b[hAtime:], h.atime)
	b[hBits] = h.bits
	b[hFreq] = h.freq
	b[hBits+2], b[hBits+3] = 0, 0
	le.PutUint16(b[hKlen:], uint16(h.klen))
	b[hKlen+2], b[hKlen+3] = 0, 0
	le.PutUint32(b[hVlen:], uint32(h.vlen))
}

func getHeader(b []byte) header {
	_ = b[hdrSize-1]
	return header{
		cas:   le.Uint64(b[hCAS:]),
		seq:   le.Uint64(b[hSeq:]),
		exp:   int64(le.Uint64(b[hExp:])),
		flags: le.Uint32(b[hFlags:]),
		stime: le.Uint32(b[hStime:]),
		atime: le.Uint32(b[hAtime:]),
		bits:  b[hBits],
		freq:  b[hFreq],
		klen:  int(le.Uint16(b[hKlen:])),
		vlen:  int(le.Uint32(b[hVlen:])),
	}
}

// lens reads only the immutable key and value lengths.
func lens(b []byte) (klen, vlen int) {
	return int(le.Uint16(b[hKlen:])), int(le.Uint32(b[hVlen:]))
}

// itemKey and itemValue slice an item's key and value; the value's capacity
// is clipped so that an append by a caller cannot run into the next item.
func itemKey(b []byte, klen int) []byte { return b[hdrSize : hdrSize+klen : hdrSize+klen] }

func itemValue(b []byte, klen, vlen int) []byte {
	s := hdrSize + klen
	return b[s : s+vlen : s+vlen]
}

// writeMeta stores the header fields that OpMeta and OpBump change in place.
func writeMeta(b []byte, h *header) {
	le.PutUint64(b[hCAS:], h.cas)
	le.PutUint64(b[hExp:], uint64(h.exp))
	le.PutUint32(b[hFlags:], h.flags)
	le.PutUint32(b[hAtime:], h.atime)
	b[hBits] = h.bits
	b[hFreq] = h.freq
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
