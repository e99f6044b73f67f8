package test

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

// These test the differential harness itself, without servers.

func TestUnescape(t *testing.T) {
	f := func(in, want string, wantErr bool) {
		t.Helper()
		got, err := unescape(in)
		if (err != nil) != wantErr || (err == nil && string(got) != want) {
			t.Errorf("unescape(%q) = %q, %v; want %q, error %v", in, got, err, want, wantErr)
		}
	}
	f(`get a\r\n`, "get a\r\n", false)
	f(`\0\t\\\x7f\xFF`, "\x00\t\\\x7f\xff", false)
	f(`k\[ab*3]z`, "kabababz", false)
	f(`\[x*0]`, "", false)
	f(`\[a*b*2]`, "a*ba*b", false)
	f(`\x4`, "", true)
	f(`\xzz`, "", true)
	f(`\q`, "", true)
	f(`abc\`, "", true)
	f(`\[abc]`, "", true)
	f(`\[a*-1]`, "", true)
}

func TestBinSpecEncode(t *testing.T) {
	f := func(spec string, lastCAS uint64, wantHex string) {
		t.Helper()
		b, err := parseBinSpec(spec)
		if err != nil {
			t.Fatalf("parseBinSpec(%q): %v", spec, err)
		}
		got, err := b.encode(lastCAS)
		if err != nil {
			t.Fatalf("encode(%q): %v", spec, err)
		}
		if want := strings.ReplaceAll(wantHex, " ", ""); hex.EncodeToString(got) != want {
			t.Errorf("%q encodes as\n %x, want\n %s", spec, got, want)
		}
	}
	f("op=noop opaque=1", 0,
		"800a0000 00000000 00000000 00000001 0000000000000000")
	f("op=set key=a extras=0000002a_00000000 value=hi opaque=0x10 cas=$cas", 7,
		"80010001 08000000 0000000b 00000010 0000000000000007 0000002a00000000 61 6869")
	f("op=get key=a keylen=10 magic=0x81 vbucket=2", 0,
		"8100000a 00000002 00000001 00000000 0000000000000000 61")
	f("op=0x50 bodylen=100", 0,
		"80500000 00000000 00000064 00000000 0000000000000000")
}

func TestBinSpecErrors(t *testing.T) {
	f := func(spec string) {
		t.Helper()
		if _, err := parseBinSpec(spec); err == nil {
			t.Errorf("parseBinSpec(%q) succeeded, want an error", spec)
		}
	}
	f("op=nosuchop")
	f("opaque=x")
	f("extras=xyz")
	f("colour=red")
	f("op")
}

func TestNormalizer(t *testing.T) {
	f := func(reply, want string) {
		t.Helper()
		n := &normalizer{casIDs: map[string]int{}}
		if got := n.render([]byte(reply)); got != want {
			t.Errorf("render(%q) =\n%s\nwant\n%s", reply, got, want)
		}
	}
	f("STORED\r\n", "STORED\\r\\n\n")
	f("VALUE a 0 1 99\r\nx\r\nVALUE b 0 2 7\r\nEN\r\nVALUE a 0 1 99\r\nx\r\nEND\r\n",
		"VALUE a 0 1 <cas1>\\r\\n\n  data: x\\r\\n\nVALUE b 0 2 <cas2>\\r\\n\n  data: EN\\r\\n\n"+
			"VALUE a 0 1 <cas1>\\r\\n\n  data: x\\r\\n\nEND\\r\\n\n")
	f("VA 2 c55 t-1\r\nhi\r\nHD c56 kfoo\r\n", "VA 2 c<cas1> t-1\\r\\n\n  data: hi\\r\\n\nHD c<cas2> kfoo\\r\\n\n")
	f("VERSION 1.6.18-petrel\r\nSTAT pid 123\r\n", "VERSION <version>\\r\\n\nSTAT pid <value>\\r\\n\n")
	f("ME k exp=-1 la=3 cas=9 fetch=no cls=1 size=63\r\n", "ME k exp=-1 la=<la> cas=<cas1> fetch=no cls=<cls> size=<size>\\r\\n\n")
	f("ERR\x00\xff", "ERR\\x00\\xff <no \\r\\n>\n")
	bin, _ := hex.DecodeString(strings.ReplaceAll("810b0000 00000000 00000006 00000009 0000000000000001 312e362e3138", " ", ""))
	f(string(bin)+"END\r\n", "bin< op=version status=0x0000 datatype=0 opaque=9 cas=<cas1> value=<version>\nEND\\r\\n\n")
}

func TestCaseFilesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/diff/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files: %v", err)
	}
	for _, path := range files {
		f, err := parseDiffFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(f.cases) == 0 {
			t.Errorf("%s has no cases", path)
		}
		names := map[string]bool{}
		for _, c := range f.cases {
			if names[c.name] {
				t.Errorf("%s:%d: duplicate case name %q", path, c.line, c.name)
			}
			names[c.name] = true
		}
	}
}
