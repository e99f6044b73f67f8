package cache

import (
	"math"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	f := func(h header) {
		t.Helper()
		b := make([]byte, hdrSize+8)
		for i := range b {
			b[i] = 0xAA // stale bytes must not leak into fields
		}
		putHeader(b, &h)
		if got := getHeader(b); got != h {
			t.Errorf("round trip %+v: got %+v", h, got)
		}
		if k, v := lens(b); k != h.klen || v != h.vlen {
			t.Errorf("lens %+v: got %d %d", h, k, v)
		}
		if b[hdrSize] != 0xAA {
			t.Errorf("header of %+v wrote past %d bytes", h, hdrSize)
		}
	}
	f(header{})
	f(header{cas: 1, seq: 2, exp: 3, flags: 4, stime: 5, atime: 6, bits: 7, freq: 8, klen: 9, vlen: 10})
	f(header{cas: math.MaxUint64, seq: math.MaxUint64, exp: math.MaxInt64, flags: math.MaxUint32, stime: math.MaxUint32, atime: math.MaxUint32, bits: 0xff, freq: 0xff, klen: maxKeyLen, vlen: math.MaxUint32})
	f(header{exp: -1, klen: 250, vlen: 1 << 20})
	f(header{exp: math.MinInt64, bits: bitStale | bitWinSent})
}

func TestWriteMetaKeepsLengthsAndSeq(t *testing.T) {
	b := make([]byte, hdrSize)
	h := header{cas: 9, seq: 10, exp: 11, flags: 12, stime: 13, atime: 14, klen: 3, vlen: 4}
	putHeader(b, &h)
	m := h
	m.cas, m.exp, m.flags, m.atime, m.bits, m.freq = 1, 2, 3, 4, bitFetched, 5
	m.seq, m.stime, m.klen, m.vlen = 99, 99, 99, 99 // not written by writeMeta
	writeMeta(b, &m)
	want := header{cas: 1, seq: 10, exp: 2, flags: 3, stime: 13, atime: 4, bits: bitFetched, freq: 5, klen: 3, vlen: 4}
	if got := getHeader(b); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestItemSize(t *testing.T) {
	f := func(klen, vlen, want int) {
		t.Helper()
		if got := itemSize(klen, vlen); got != want {
			t.Errorf("itemSize(%d, %d) = %d, want %d", klen, vlen, got, want)
		}
	}
	f(0, 0, 48)
	f(1, 0, 56)
	f(8, 0, 56)
	f(8, 1, 64)
	f(36, 224, 312)
}

func TestSlotPacking(t *testing.T) {
	f := func(tag uint16, seg int32, off int) {
		t.Helper()
		v := packSlot(tag, seg, off)
		if v <= tombstone {
			t.Errorf("slot (%d,%d,%d) = %#x collides with empty/tombstone", tag, seg, off, v)
		}
		if slotTag(v) != tag || slotSeg(v) != seg || slotOff(v) != off {
			t.Errorf("slot (%d,%d,%d) = %#x unpacks to (%d,%d,%d)", tag, seg, off, v, slotTag(v), slotSeg(v), slotOff(v))
		}
	}
	f(0, 0, 0)
	f(0xffff, 0, 0)
	f(1, 1, 8)
	f(0xabcd, 12345, 1<<20-8)
	f(0xffff, maxSegments-1, maxSegmentLen-8)
	f(0, maxSegments-1, 0)
}

func TestTTLBucket(t *testing.T) {
	f := func(ttl int64, want int) {
		t.Helper()
		const now = 1_000_000
		exp := int64(0)
		if ttl >= 0 {
			exp = now + ttl
		}
		if got := ttlBucket(exp, now); got != want {
			t.Errorf("ttlBucket(ttl %d) = %d, want %d", ttl, got, want)
		}
	}
	f(-1, noTTLBucket) // exptime 0: never expires
	f(0, 0)
	f(7, 0)
	f(8, 1)
	f(2047, 255)
	f(2048, 256)
	f(2048+127, 256)
	f(2048+128, 257)
	f(2048+32768-1, 511)
	f(2048+32768, 512)
	f(2048+32768+524288, 768)
	f(2048+32768+524288+32768*255, 1023)
	f(1<<40, 1023)
	if got := ttlBucket(5, 10); got != 0 {
		t.Errorf("exptime in the past: bucket %d, want 0", got)
	}
}

func TestBucketRange(t *testing.T) {
	f := func(b int, lo, hi int64) {
		t.Helper()
		if l, h := bucketRange(b); l != lo || h != hi {
			t.Errorf("bucketRange(%d) = %d, %d; want %d, %d", b, l, h, lo, hi)
		}
		if b == noTTLBucket {
			return
		}
		const now = 5000
		if got := ttlBucket(now+lo, now); got != b {
			t.Errorf("ttl %d lands in bucket %d, not %d", lo, got, b)
		}
		if got := ttlBucket(now+hi-1, now); got != b && b != nTTLBuckets-1 {
			t.Errorf("ttl %d lands in bucket %d, not %d", hi-1, got, b)
		}
	}
	f(0, 0, 8)
	f(1, 8, 16)
	f(255, 2040, 2048)
	f(256, 2048, 2048+128)
	f(512, 2048+32768, 2048+32768+2048)
	f(1023, 2048+32768+524288+255*32768, 2048+32768+524288+256*32768)
	f(noTTLBucket, 0, 0)
}
