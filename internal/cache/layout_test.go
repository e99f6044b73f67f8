package cache

import (
	"math"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	f := func(h header) {
		t.Helper()
		n := h.size() - h.klen - h.vlen
		b := make([]byte, n+8)
		for i := range b {
			b[i] = 0xAA // stale bytes must not leak into fields
		}
		putHeader(b, &h)
		if got := getHeader(b); got != h {
			t.Errorf("round trip %+v: got %+v", h, got)
		}
		if k, v, koff := lens(b); k != h.klen || v != h.vlen || koff != n {
			t.Errorf("lens %+v: got %d %d %d", h, k, v, koff)
		}
		if b[n] != 0xAA {
			t.Errorf("header of %+v wrote past %d bytes", h, n)
		}
	}
	f(header{})
	f(header{cas: 1, exp: 3, atime: 6, bits: 7, freq: 8, klen: 9, vlen: 10})
	f(header{cas: 1, exp: 3, flags: 4, hasFlags: true, atime: 6, klen: 9, vlen: 10})
	f(header{hasFlags: true}) // flags set back to 0 keep their room
	f(header{cas: math.MaxUint64, exp: math.MaxUint32, flags: math.MaxUint32, hasFlags: true, atime: math.MaxUint32, bits: 0xff, freq: 0xff, klen: maxKeyLen, vlen: maxSegmentLen})
	f(header{klen: 250, vlen: 1 << 20, bits: bitStale | bitWinSent})
}

func TestExptimeEncoding(t *testing.T) {
	f := func(in, want int64) {
		t.Helper()
		b := make([]byte, hdrSize)
		putHeader(b, &header{exp: in})
		if got := getHeader(b).exp; got != want {
			t.Errorf("exptime %d reads back as %d, want %d", in, got, want)
		}
	}
	f(0, 0) // never expires
	f(1, 1)
	f(1_800_000_000, 1_800_000_000)
	f(-1, 1) // in the past: still expired, never "never"
	f(math.MinInt64, 1)
	f(math.MaxUint32+1, math.MaxUint32)
	f(math.MaxInt64, math.MaxUint32)
}

func TestWriteMeta(t *testing.T) {
	f := func(h header, m header, want header) {
		t.Helper()
		b := make([]byte, h.size())
		putHeader(b, &h)
		writeMeta(b, &m)
		if got := getHeader(b); got != want {
			t.Errorf("writeMeta(%+v) over %+v: got %+v, want %+v", m, h, got, want)
		}
	}
	h := header{cas: 9, exp: 11, atime: 14, klen: 3, vlen: 4}
	m := header{cas: 1, exp: 2, atime: 4, bits: bitFetched, freq: 5, klen: 99, vlen: 99}
	// Lengths are immutable; without room for flags none are written.
	f(h, m, header{cas: 1, exp: 2, atime: 4, bits: bitFetched, freq: 5, klen: 3, vlen: 4})
	hf := h
	hf.flags, hf.hasFlags = 12, true
	mf := m
	mf.flags, mf.hasFlags = 0, true
	f(hf, mf, header{cas: 1, exp: 2, atime: 4, bits: bitFetched, freq: 5, hasFlags: true, klen: 3, vlen: 4})
	mf.flags = 77
	f(hf, mf, header{cas: 1, exp: 2, flags: 77, atime: 4, bits: bitFetched, freq: 5, hasFlags: true, klen: 3, vlen: 4})
}

func TestItemSize(t *testing.T) {
	f := func(klen, vlen int, flags bool, want int) {
		t.Helper()
		if got := itemSize(klen, vlen, flags); got != want {
			t.Errorf("itemSize(%d, %d, %v) = %d, want %d", klen, vlen, flags, got, want)
		}
	}
	f(0, 0, false, 23)
	f(1, 0, false, 24)
	f(8, 1, false, 32)
	f(8, 1, true, 36)
	f(36, 224, false, 283) // memcached: 48+8+36+1+224+2 = 319, in a 384 B chunk
	f(36, 224, true, 287)
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
	f(0x3fff, 0, 0)
	f(1, 1, 8)
	f(0x3fff, 1, 7) // unaligned offsets
	f(0x2bcd, 12345, 1<<20-1)
	f(0x3fff, maxSegments-1, maxSegmentLen-1)
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

func TestPolicyNames(t *testing.T) {
	f := func(name string, want Policy) {
		t.Helper()
		p, err := ParsePolicy(name)
		if err != nil || p != want || p.String() != name {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", name, p, err, want)
		}
	}
	f("fifo", EvictFIFO)
	f("merge", EvictMerge)
	f("random", EvictRandom)
	f("none", EvictNone)
	if _, err := ParsePolicy("lru"); err == nil {
		t.Error("ParsePolicy(lru) accepted")
	}
}
