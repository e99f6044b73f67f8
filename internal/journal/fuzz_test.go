package journal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the decoder: it must never
// panic, never claim more bytes than it was given, and whatever it accepts
// must encode back to exactly the bytes it decoded. Each input is tried
// as is and with a valid length and CRC, so that random bodies get past the
// checksum and exercise the field parsing.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{
		{Seq: 1, Type: TypeSet, Key: []byte("foo"), Value: []byte("bar"), Flags: 1, Exptime: 100, CAS: 1},
		{Seq: 2, Type: TypeDelete, Key: []byte("foo")},
		{Seq: 3, Type: TypeTouch, Key: []byte("foo"), Exptime: 5},
		{Seq: 4, Type: TypeFlushAll, At: 7, groupEnd: true, groupFirst: 1},
		{Seq: 5, Type: TypeFlushAll, At: 9, Delayed: true},
	} {
		f.Add(AppendRecord(nil, &r))
	}
	f.Add([]byte{})
	f.Add([]byte{9, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		if len(b) >= frameHeader && len(b)-frameHeader <= maxBody {
			sealed := bytes.Clone(b)
			binary.LittleEndian.PutUint32(sealed, uint32(len(b)-frameHeader))
			sealFrame(sealed)
			check(t, sealed)
		}
	})
}

func check(t *testing.T, b []byte) {
	var r Record
	n, err := DecodeRecord(b, &r)
	if err != nil {
		if n != 0 {
			t.Fatalf("error %v with n=%d", err, n)
		}
		return
	}
	if n > len(b) || n < frameHeader {
		t.Fatalf("n=%d for %d bytes", n, len(b))
	}
	if out := AppendRecord(nil, &r); !bytes.Equal(out, b[:n]) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, b[:n])
	}
}
