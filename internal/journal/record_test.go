package journal

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	f := func(name string, in Record) {
		t.Helper()
		buf := AppendRecord([]byte("prefix"), &in)
		if len(buf) != len("prefix")+EncodedLen(&in) {
			t.Errorf("%s: encoded %d bytes, EncodedLen says %d", name, len(buf)-6, EncodedLen(&in))
		}
		var out Record
		n, err := DecodeRecord(buf[6:], &out)
		if err != nil || n != len(buf)-6 {
			t.Fatalf("%s: decode = %d, %v", name, n, err)
		}
		if !equalRecords(&in, &out) {
			t.Errorf("%s: got %+v, want %+v", name, out, in)
		}
		// Every shorter prefix is short, never corrupt or a panic.
		for i := 0; i < n; i++ {
			if _, err := DecodeRecord(buf[6:6+i], &out); !errors.Is(err, ErrShort) {
				t.Fatalf("%s: prefix of %d bytes: %v, want ErrShort", name, i, err)
			}
		}
	}
	f("set", Record{Seq: 1, Type: TypeSet, Key: []byte("foo"), Value: []byte("bar"), Flags: 7, Exptime: 1700000000, CAS: 1})
	f("set empty value", Record{Seq: 2, Type: TypeSet, Key: []byte("k"), CAS: 99})
	f("set binary", Record{Seq: 1 << 40, Type: TypeSet, Key: []byte{0, 1, 2}, Value: bytes.Repeat([]byte{0xff, 0}, 5000), Flags: 1<<32 - 1, Exptime: -1, CAS: 1<<64 - 1})
	f("set max key", Record{Seq: 3, Type: TypeSet, Key: bytes.Repeat([]byte("k"), MaxKeyLen), Value: []byte("v")})
	f("delete", Record{Seq: 4, Type: TypeDelete, Key: []byte("gone")})
	f("delete empty key", Record{Seq: 5, Type: TypeDelete})
	f("touch", Record{Seq: 6, Type: TypeTouch, Key: []byte("t"), Exptime: 1234567890})
	f("flush_all", Record{Seq: 7, Type: TypeFlushAll, At: 1700000300})
	f("flush_all delayed", Record{Seq: 7, Type: TypeFlushAll, At: 1700000300, Delayed: true})
	f("flush_all delayed, group end", Record{Seq: 9, Type: TypeFlushAll, At: 5, Delayed: true, groupEnd: true, groupFirst: 9})
	f("group end", Record{Seq: 8, Type: TypeDelete, Key: []byte("x"), groupEnd: true, groupFirst: 3})
}

func equalRecords(a, b *Record) bool {
	return a.Seq == b.Seq && a.Type == b.Type && bytes.Equal(a.Key, b.Key) &&
		bytes.Equal(a.Value, b.Value) && a.Flags == b.Flags && a.Exptime == b.Exptime &&
		a.CAS == b.CAS && a.At == b.At && a.Delayed == b.Delayed && a.groupEnd == b.groupEnd && a.groupFirst == b.groupFirst
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := AppendRecord(nil, &Record{Seq: 9, Type: TypeSet, Key: []byte("key"), Value: []byte("value"), Flags: 3})
	var r Record
	for i := range good {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			n, err := DecodeRecord(b, &r)
			if err == nil {
				t.Fatalf("byte %d bit %d: flipped frame decoded (%d bytes): %+v", i, bit, n, r)
			}
		}
	}
}

func TestMarkGroupEnd(t *testing.T) {
	buf := AppendRecord(nil, &Record{Seq: 1, Type: TypeTouch, Key: []byte("a"), Exptime: 5})
	off := len(buf)
	buf = AppendRecord(buf, &Record{Seq: 2, Type: TypeFlushAll, At: 10})
	buf = markGroupEnd(buf, off, 1)
	var r Record
	n, err := DecodeRecord(buf, &r)
	if err != nil || r.groupEnd {
		t.Fatalf("first record: %v, groupEnd %v", err, r.groupEnd)
	}
	if _, err := DecodeRecord(buf[n:], &r); err != nil || !r.groupEnd || r.groupFirst != 1 || r.At != 10 || r.Seq != 2 {
		t.Fatalf("marked record: %v, %+v", err, r)
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	buf := AppendRecord(nil, &Record{Seq: 1, Type: TypeSet, Key: []byte("k"), Value: []byte("v")})
	bad := bytes.Clone(buf)
	bad[len(bad)-1] ^= 1
	var r Record
	allocs := testing.AllocsPerRun(100, func() {
		DecodeRecord(buf, &r)
		DecodeRecord(bad, &r)
		DecodeRecord(buf[:5], &r)
		AppendRecord(buf[:0], &r)
	})
	if allocs != 0 {
		t.Errorf("decode/encode allocate %.1f times per run", allocs)
	}
}
