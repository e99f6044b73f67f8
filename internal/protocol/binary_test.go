package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestParseBinary(t *testing.T) {
	f := func(in string, wantN int, wantErr error, extras, key, value string) {
		t.Helper()
		var r BinRequest
		n, err := ParseBinary(mustHex(t, in), &r)
		if n != wantN || !errors.Is(err, wantErr) {
			t.Fatalf("ParseBinary(%s) = %d, %v; want %d, %v", in, n, err, wantN, wantErr)
		}
		if n == 0 {
			return
		}
		if hex.EncodeToString(r.Extras) != extras || string(r.Key) != key || string(r.Value) != value {
			t.Errorf("ParseBinary(%s): extras %x key %q value %q; want %s %q %q", in, r.Extras, r.Key, r.Value, extras, key, value)
		}
	}
	// get "foo"
	f("800000030000000000000003000000070000000000000000666f6f", 27, nil, "", "foo", "")
	// set "k"="v" with flags 1, exp 0
	f("80010001080000000000000a000000000000000000000000"+"0000000100000000"+"6b"+"76", 34, nil, "0000000100000000", "k", "v")
	// no-op, and a no-op followed by more bytes
	f("800a00000000000000000000000000000000000000000000", 24, nil, "", "", "")
	f("800a0000000000000000000000000000000000000000000080", 24, nil, "", "", "")
	// incomplete header, incomplete body
	f("800a0000", 0, nil, "", "", "")
	f("800000030000000000000003000000070000000000000000666f", 0, nil, "", "", "")
	// a response magic, and extras+key longer than the body
	f("810a00000000000000000000000000000000000000000000", 0, ErrBinMagic, "", "", "")
	f("800000030100000000000003000000070000000000000000666f6f", 0, ErrBinLengths, "", "", "")
}

func TestParseBinaryHeaderFields(t *testing.T) {
	in := mustHex(t, "8015000214aa01020000002bcafebabe0102030405060708")
	var h BinHeader
	if !ParseBinHeader(in, &h) {
		t.Fatal("ParseBinHeader refused a whole header")
	}
	want := BinHeader{Magic: 0x80, Opcode: 0x15, KeyLen: 2, ExtLen: 20, DataType: 0xaa, VBucket: 0x0102,
		BodyLen: 43, Opaque: 0xcafebabe, CAS: 0x0102030405060708}
	if h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}
	if h.Len() != 67 || h.PrefixLen() != 46 || h.ValueLen() != 21 {
		t.Errorf("Len %d PrefixLen %d ValueLen %d; want 67 46 21", h.Len(), h.PrefixLen(), h.ValueLen())
	}
	if got := AppendBinHeader(nil, &h); !bytes.Equal(got, in) {
		t.Errorf("AppendBinHeader = %x, want %x", got, in)
	}
}

func TestParseBinaryPrefix(t *testing.T) {
	// A set whose 1000-byte value has not arrived: the prefix is enough.
	in := mustHex(t, "80010001080000000000041100000000000000000000000000000000000000006b")
	var r BinRequest
	n, err := ParseBinaryPrefix(in, &r)
	if err != nil || n != 33 || string(r.Key) != "k" || len(r.Extras) != 8 || r.Value != nil || r.ValueLen() != 1032 {
		t.Errorf("ParseBinaryPrefix = %d, %v, key %q, extras %x, value len %d", n, err, r.Key, r.Extras, r.ValueLen())
	}
	if n, err := ParseBinaryPrefix(in[:30], &r); n != 0 || err != nil {
		t.Errorf("short prefix: %d, %v", n, err)
	}
}

func TestAppendBinResponse(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if hex.EncodeToString(got) != want {
			t.Errorf("got  %x\nwant %s", got, want)
		}
	}
	f(AppendBinResponse(nil, BinGetK, BinStatusOK, 7, 9, []byte{0, 0, 0, 1}, []byte("k"), []byte("v")),
		"810c0001040000000000000600000007000000000000000900000001"+"6b76")
	f(AppendBinError(nil, BinGet, BinStatusNotFound, 1),
		"810000000000000100000009000000010000000000000000"+hex.EncodeToString([]byte("Not found")))
	f(AppendBinErrorText(nil, BinSet, BinStatusNoMemory, 1, "oom"),
		"810100000000008200000003000000010000000000000000"+"6f6f6d")
}

func TestBinStatusText(t *testing.T) {
	f := func(status uint16, want string) {
		t.Helper()
		if got := BinStatusText(status); got != want {
			t.Errorf("BinStatusText(%#x) = %q, want %q", status, got, want)
		}
	}
	f(BinStatusNotFound, "Not found")
	f(BinStatusExists, "Data exists for key.")
	f(BinStatusTooLarge, "Too large.")
	f(BinStatusInvalid, "Invalid arguments")
	f(BinStatusNotStored, "Not stored.")
	f(BinStatusNonNumeric, "Non-numeric server-side value for incr or decr")
	f(BinStatusUnknown, "Unknown command")
	f(BinStatusNoMemory, "Out of memory")
	f(BinStatusOK, "")
}

func TestParseBinaryAllocs(t *testing.T) {
	in := mustHex(t, "80010001080000000000000a000000000000000000000000"+"0000000100000000"+"6b"+"76")
	var r BinRequest
	out := make([]byte, 0, 256)
	if a := testing.AllocsPerRun(100, func() {
		if n, err := ParseBinary(in, &r); n == 0 || err != nil {
			t.Fatalf("ParseBinary: %d, %v", n, err)
		}
		out = AppendBinResponse(out[:0], r.Opcode, BinStatusOK, r.Opaque, 1, r.Extras[:4], r.Key, r.Value)
	}); a != 0 {
		t.Errorf("%.1f allocations per parse and reply, want 0", a)
	}
}

// FuzzParseBinary checks that any input parses without panicking, that a
// whole packet's parts add up to its length, and that re-encoding a parsed
// packet gives back the same bytes.
func FuzzParseBinary(f *testing.F) {
	f.Add(mustHex(f, "800000030000000000000003000000070000000000000000666f6f"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r BinRequest
		n, err := ParseBinary(in, &r)
		if err != nil || n == 0 {
			if n != 0 {
				t.Fatalf("n = %d with error %v", n, err)
			}
			return
		}
		if n > len(in) || n != BinHeaderLen+len(r.Extras)+len(r.Key)+len(r.Value) {
			t.Fatalf("n = %d for %d bytes; parts %d+%d+%d", n, len(in), len(r.Extras), len(r.Key), len(r.Value))
		}
		if out := AppendBinRequest(nil, &r); !bytes.Equal(out, in[:n]) {
			t.Fatalf("round trip:\n got %x\nwant %x", out, in[:n])
		}
		var p BinRequest
		pn, err := ParseBinaryPrefix(in, &p)
		if err != nil || pn != p.PrefixLen() || !bytes.Equal(p.Key, r.Key) || !bytes.Equal(p.Extras, r.Extras) {
			t.Fatalf("prefix parse disagrees: %d, %v", pn, err)
		}
	})
}
