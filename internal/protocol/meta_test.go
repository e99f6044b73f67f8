package protocol

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseMeta(t *testing.T) {
	var r MetaRequest
	f := func(in string, wantN int, cmd MetaCmd, err MetaErr, key string, dataLen int) {
		t.Helper()
		n := ParseMeta([]byte(in), &r)
		if n != wantN {
			t.Fatalf("%q: consumed %d, want %d", in, n, wantN)
		}
		if n == 0 {
			return
		}
		if r.Cmd != cmd || r.Err != err || string(r.Key) != key || r.DataLen != dataLen {
			t.Errorf("%q: got cmd=%d err=%q key=%q datalen=%d, want cmd=%d err=%q key=%q datalen=%d",
				in, r.Cmd, r.Err, r.Key, r.DataLen, cmd, err, key, dataLen)
		}
	}
	f("mg foo v", 0, 0, 0, "", 0)
	f("mg foo v\r\n", 10, MetaGet, MetaOK, "foo", -1)
	f("mg foo v\n", 9, MetaGet, MetaOK, "foo", -1)
	f("  mg   foo  v  \r\nmn\r\n", 17, MetaGet, MetaOK, "foo", -1)
	f("mn\r\n", 4, MetaNoop, MetaOK, "", -1)
	f("mn foo bar\r\n", 12, MetaNoop, MetaOK, "", -1)
	f("mg\r\n", 4, MetaGet, MetaErrNoKey, "", -1)
	f("mx foo\r\n", 8, MetaNone, MetaErrNoKey, "", -1)
	f("ms foo 5 T0\r\nhello\r\n", 13, MetaSet, MetaOK, "foo", 5)
	f("ms foo\r\n", 8, MetaSet, MetaErrFormat, "foo", -1)
	f("ms foo -1\r\n", 11, MetaSet, MetaErrFormat, "foo", -1)
	f("ms foo 2147483646\r\n", 19, MetaSet, MetaErrFormat, "foo", -1)
	f("ms foo 4294967298\r\n", 19, MetaSet, MetaOK, "foo", 2)
	f("ms foo 2 Z\r\n", 12, MetaSet, MetaErrInvalidFlag, "foo", 2)
	f("ms foo 2 MX\r\n", 13, MetaSet, MetaErrSetMode, "foo", 2)
	f("ma foo MX\r\n", 11, MetaArith, MetaErrArithMode, "foo", -1)
	f("ma foo Dx\r\n", 11, MetaArith, MetaErrInvalidOrDup, "foo", -1)
	f("mg foo Dx\r\n", 11, MetaGet, MetaErrDelta, "foo", -1)
	f("mg foo Nx Z\r\n", 13, MetaGet, MetaErrInvalidFlag, "foo", -1)
	f("mg foo Tx Fx\r\n", 14, MetaGet, MetaErrBadToken, "foo", -1)
	f("mg foo v v\r\n", 12, MetaGet, MetaErrDuplicate, "foo", -1)
	f("mg foo \xff\r\n", 10, MetaGet, MetaErrDuplicate, "foo", -1)
	f("mg foo O"+strings.Repeat("x", 32)+"\r\n", 42, MetaGet, MetaErrOpaque, "foo", -1)
	f("mg "+strings.Repeat("k", 251)+"\r\n", 256, MetaGet, MetaErrFormat, strings.Repeat("k", 251), -1)
	f("mg foo b\r\n", 10, MetaGet, MetaErrKeyDecode, "foo", -1)
	f("me foo b\r\n", 10, MetaDebug, MetaErrFormat, "foo", -1)
	f("me foo\r\n", 8, MetaDebug, MetaOK, "foo", -1)
	f("me\r\n", 4, MetaDebug, MetaErrFormat, "", -1)
	f("mg foo"+strings.Repeat(" c", 17)+"\r\n", 42, MetaGet, MetaErrDuplicate, "foo", -1)
	f("mg foo"+strings.Repeat(" c", 18)+"\r\n", 44, MetaGet, MetaErrTooManyGet, "foo", -1)
	f("md foo"+strings.Repeat(" c", 18)+"\r\n", 44, MetaDelete, MetaErrTooMany, "foo", -1)
	// The line is a C string: a NUL ends it.
	f("mg foo\x00 Z\r\n", 11, MetaGet, MetaOK, "foo", -1)
}

func TestParseMetaFlags(t *testing.T) {
	var r MetaRequest
	ParseMeta([]byte("ma foo N-1 T4294967297 R5 F4294967297 C18446744073709551615 J7 D+9 MD q O12 k\r\n"), &r)
	if r.Err != MetaOK {
		t.Fatalf("err %q", r.Err)
	}
	f := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	f("Vivify", r.Vivify, int32(-1))
	f("TTL", r.TTL, int32(1))
	f("Recache", r.Recache, int32(5))
	f("ClientFlags", r.ClientFlags, uint32(1))
	f("CAS", r.CAS, uint64(18446744073709551615))
	f("Initial", r.Initial, uint64(7))
	f("Delta", r.Delta, uint64(9))
	f("Mode", r.Mode, byte('D'))
	f("NumFlags", r.NumFlags(), 11)
	f("Flag(9)", string(r.Flag(9)), "O12")
	f("Has(q)", r.Has('q'), true)
	f("Has(v)", r.Has('v'), false)
	ParseMeta([]byte("ma foo\r\n"), &r)
	f("default Delta", r.Delta, uint64(1))
}

func TestMetaNumbers(t *testing.T) {
	f := func(in string, want uint64, ok bool) {
		t.Helper()
		v, good := parseUint64([]byte(in))
		if v != want || good != ok {
			t.Errorf("parseUint64(%q) = %d, %v; want %d, %v", in, v, good, want, ok)
		}
	}
	f("0", 0, true)
	f("+5", 5, true)
	f(" 5", 5, true)
	f("5\t", 5, true)
	f("-0", 0, true)
	f("-5", 0, false)
	f("5x", 0, false)
	f("", 0, false)
	f("-", 0, false)
	f("18446744073709551615", 18446744073709551615, true)
	f("18446744073709551616", 0, false)
	f("-18446744073709551615", 1, true) // strtoull negates, and 1 looks positive
	g := func(in string, want int32, ok bool) {
		t.Helper()
		v, good := parseInt32([]byte(in))
		if v != want || good != ok {
			t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", in, v, good, want, ok)
		}
	}
	g("-1", -1, true)
	g("2147483648", -2147483648, true)
	g("4294967298", 2, true)
	g("9223372036854775807", -1, true)
	g("9223372036854775808", 0, false)
	g("-9223372036854775808", 0, true)
	g("x", 0, false)
}

func TestBase64(t *testing.T) {
	f := func(in, want string, ok bool) {
		t.Helper()
		dst := make([]byte, len(in))
		n := Base64Decode(dst, []byte(in))
		if (n > 0) != ok || string(dst[:n]) != want {
			t.Errorf("Base64Decode(%q) = %q (%d), want %q ok=%v", in, dst[:n], n, want, ok)
		}
	}
	f("YTE=", "a1", true)
	f("YTE=YTE=", "a1", true) // stops after the first padded block
	f("Y!TE=", "a1", true)    // bytes outside the alphabet are skipped
	f("YWJj", "abc", true)
	f("YQ==", "a", true)
	f("YTE", "", false)
	f("====", "", false)
	f("!!!!", "", false)
	f("", "", false)
	for _, src := range []string{"", "a", "ab", "abc", "abcd", "\x00\x01\xff"} {
		got := AppendBase64(nil, []byte(src))
		if want := base64.StdEncoding.EncodeToString([]byte(src)); string(got) != want {
			t.Errorf("AppendBase64(%q) = %q, want %q", src, got, want)
		}
	}
}

func TestMetaReplies(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(AppendMetaEnd(AppendMetaUint(AppendMetaVA(nil, 5), 'f', 42)), "VA 5 f42\r\n")
	f(AppendMetaInt([]byte("HD"), 't', -1), "HD t-1")
	f(AppendMetaKey(nil, []byte("a1"), true), " kYTE= b")
	f(AppendMetaKey(nil, []byte("a1"), false), " ka1")
	f(AppendMetaToken(AppendMetaFlag(nil, 'W'), []byte("O1")), " W O1")
	f(AppendMetaError(nil, MetaErrInvalidFlag), "CLIENT_ERROR invalid flag\r\n")
	f(AppendMetaDebug(nil, []byte("k"), false, MetaDebugInfo{Exp: -1, LA: 2, CAS: 3, Fetched: true, Class: 1, Size: 62}),
		"ME k exp=-1 la=2 cas=3 fetch=yes cls=1 size=62\r\n")
}

func TestMetaCommand(t *testing.T) {
	f := func(in string, want MetaCmd) {
		t.Helper()
		if got := MetaCommand([]byte(in)); got != want {
			t.Errorf("MetaCommand(%q) = %d, want %d", in, got, want)
		}
	}
	f("mg foo", MetaGet)
	f("  ms foo 1", MetaSet)
	f("mn\r\n", MetaNoop)
	f("mn\n", MetaNoop)
	f("mgx", MetaNone)
	f("get foo", MetaNone)
	f("m", MetaNone)
}

func TestMetaDecodeKey(t *testing.T) {
	var r MetaRequest
	ParseMeta([]byte("mg YTE= b\r\n"), &r)
	buf := make([]byte, 0, 8)
	if got := r.DecodeKey(buf); !bytes.Equal(got, []byte("a1")) {
		t.Errorf("DecodeKey = %q", got)
	}
	ParseMeta([]byte("mg YTE=\r\n"), &r)
	if got := r.DecodeKey(buf); string(got) != "YTE=" {
		t.Errorf("DecodeKey without b = %q", got)
	}
}

// FuzzParseMeta checks that any input parses without panicking, that a
// consumed line ends at a '\n', and that a clean parse is self-consistent.
func FuzzParseMeta(f *testing.F) {
	for _, seed := range []string{
		"mg foo v k c t s f h l O1 q u\r\n", "ms foo 3 T10 F5 c k I C5 MA\r\nabc\r\n",
		"ma n N0 J5 D3 M- v t T10\r\n", "md foo I T30 q C1\r\n", "me YTE= b\r\n", "mn\r\n",
	} {
		f.Add([]byte(seed))
	}
	var r MetaRequest
	f.Fuzz(func(t *testing.T, in []byte) {
		n := ParseMeta(in, &r)
		if n == 0 {
			if bytes.IndexByte(in, '\n') >= 0 {
				t.Fatalf("complete line not consumed: %q", in)
			}
			return
		}
		if n > len(in) || in[n-1] != '\n' {
			t.Fatalf("consumed %d bytes of %q", n, in)
		}
		if r.Err != MetaOK {
			if r.Err.String() == "" {
				t.Fatalf("error %d has no text", r.Err)
			}
			return
		}
		if r.Cmd == MetaSet && r.DataLen < 0 {
			t.Fatalf("ms without a data length: %q", in)
		}
		if r.Cmd != MetaNoop && (len(r.Key) == 0 || len(r.Key) > MaxKeyLen) {
			t.Fatalf("bad key %q accepted", r.Key)
		}
		if r.NumFlags() > MetaMaxFlags {
			t.Fatalf("%d flags", r.NumFlags())
		}
		for i := 0; i < r.NumFlags(); i++ {
			if fl := r.Flag(i); len(fl) == 0 || !r.Has(fl[0]) {
				t.Fatalf("flag %q not in the set", fl)
			}
		}
		key := r.DecodeKey(make([]byte, 0, MaxKeyLen))
		if r.Has('b') && len(key) == 0 {
			t.Fatalf("b key %q decoded to nothing", r.Key)
		}
	})
}
