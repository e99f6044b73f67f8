package cmdlog

import (
	"strings"
	"testing"
	"time"
)

// TestAppendLine checks lines against docs/cmdlog.md's v1 format.
func TestAppendLine(t *testing.T) {
	f := func(rec Record, hash bool, want string) {
		t.Helper()
		got := string(AppendLine(nil, &rec, "127.0.0.1:5000", hash))
		if got != want+"\n" {
			t.Errorf("AppendLine(%+v, hash=%v)\n got %q\nwant %q", rec, hash, got, want+"\n")
		}
	}
	const ts = 1732200000123456
	f(Record{Time: ts, Cmd: CmdGet, Result: ResHit, Key: []byte("foo"), Flags: 5, VLen: 3, RLen: 23}, false,
		"1732200000.123456 127.0.0.1:5000 get foo 5 3 0 hit 23")
	f(Record{Time: 1732200000000001, Cmd: CmdSet, Result: ResStored, Key: []byte("k"), VLen: 10, TTL: 3600, RLen: 8}, false,
		"1732200000.000001 127.0.0.1:5000 set k 0 10 3600 stored 8")
	f(Record{Time: ts, Cmd: CmdTouch, Result: ResTouched, Key: []byte("k"), TTL: -1, RLen: 9}, false,
		"1732200000.123456 127.0.0.1:5000 touch k 0 0 -1 touched 9")
	f(Record{Time: ts, Cmd: CmdMg, Result: ResMiss, Key: []byte("a b\x00"), RLen: 4}, false,
		"1732200000.123456 127.0.0.1:5000 mg b64:YSBiAA== 0 0 0 miss 4")
	f(Record{Time: ts, Cmd: CmdGet, Result: ResMiss, Key: []byte("caf\xc3\xa9")}, false,
		"1732200000.123456 127.0.0.1:5000 get b64:Y2Fmw6k= 0 0 0 miss 0")
	f(Record{Time: ts, Cmd: CmdGet, Result: ResMiss, Key: []byte{}}, false,
		"1732200000.123456 127.0.0.1:5000 get b64: 0 0 0 miss 0")
	f(Record{Time: ts, Cmd: CmdGet, Result: ResMiss, Key: []byte("foo")}, true,
		"1732200000.123456 127.0.0.1:5000 get h:dcb27518fed9d577 0 0 0 miss 0")
	f(Record{Time: ts, Cmd: CmdFlushAll, Result: ResOK, NoKey: true, RLen: 4}, true,
		"1732200000.123456 127.0.0.1:5000 flush_all - 0 0 0 ok 4")
	f(Record{Time: ts, Cmd: BinCmd(0x11), Result: ResStored, Key: []byte("q"), Client: []byte("udp:10.0.0.1:9")}, false,
		"1732200000.123456 udp:10.0.0.1:9 b:setq q 0 0 0 stored 0")
	f(Record{Time: ts, Cmd: BinCmd(0x99), Result: ResError, NoKey: true}, false,
		"1732200000.123456 127.0.0.1:5000 other - 0 0 0 error 0")
	f(Record{Time: ts, Cmd: CmdDelete, Result: ResNotFound, Key: []byte("k"), Flags: 4294967295, VLen: 1 << 20}, false,
		"1732200000.123456 127.0.0.1:5000 delete k 4294967295 1048576 0 not_found 0")
}

func TestHeaderFields(t *testing.T) {
	rec := Record{Time: 1, Cmd: CmdGet, Key: []byte("k")}
	line := strings.TrimSuffix(string(AppendLine(nil, &rec, "c", false)), "\n")
	fields := strings.Split(strings.TrimSuffix(Header, "\n"), "fields=")[1]
	if got, want := len(strings.Fields(line)), len(strings.Split(fields, ",")); got != want {
		t.Errorf("a line has %d fields, the header names %d", got, want)
	}
}

func TestHashKey(t *testing.T) {
	// FNV-1a 64 reference values (the empty string is the offset basis).
	f := func(key string, want uint64) {
		t.Helper()
		if got := HashKey([]byte(key)); got != want {
			t.Errorf("HashKey(%q) = %#x, want %#x", key, got, want)
		}
	}
	f("", 0xcbf29ce484222325)
	f("a", 0xaf63dc4c8601ec8c)
	f("foobar", 0x85944171f73967e8)
}

func TestClientAddr(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := ClientAddr(in); got != want {
			t.Errorf("ClientAddr(%q) = %q, want %q", in, got, want)
		}
	}
	f("tcp:127.0.0.1:5000", "127.0.0.1:5000")
	f("tcp:[::1]:5000", "[::1]:5000")
	f("unix:/tmp/petrel.sock", "unix")
	f("", "unknown")
}

func TestCmdNames(t *testing.T) {
	f := func(c Cmd, want string) {
		t.Helper()
		if got := c.String(); got != want {
			t.Errorf("Cmd(%d) = %q, want %q", c, got, want)
		}
	}
	f(CmdOther, "other")
	f(CmdFlushAll, "flush_all")
	f(CmdMe, "me")
	f(BinCmd(0x00), "b:get")
	f(BinCmd(0x05), "b:incr")
	f(BinCmd(0x0d), "b:getkq")
	f(BinCmd(0x24), "b:gatkq")
	f(BinCmd(0x1f), "other")
	f(Cmd(40), "other")
}

// TestNow: the cheap clock agrees with time.Now to well within a second.
func TestNow(t *testing.T) {
	before := time.Now().UnixMicro()
	got := Now()
	after := time.Now().UnixMicro()
	if got < before-1e5 || got > after+1e5 {
		t.Errorf("Now() = %d, want within 0.1 s of [%d, %d]", got, before, after)
	}
}
