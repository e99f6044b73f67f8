package analyze

import (
	"strings"
	"testing"

	"petrel/internal/cmdlog"
)

// TestReadsLoggerLines parses lines written by the command logger's own
// formatter, for every command code and result it knows.
func TestReadsLoggerLines(t *testing.T) {
	if strings.TrimSpace(cmdlog.Header) != Header {
		t.Fatalf("logger header %q, analyzer expects %q", cmdlog.Header, Header)
	}
	f := func(c cmdlog.Cmd, res cmdlog.Result, key []byte, noKey, hash bool, class Class) {
		t.Helper()
		rec := cmdlog.Record{Time: 1732200000123456, Cmd: c, Result: res, Key: key, NoKey: noKey, Flags: 3, VLen: 10, TTL: -5, RLen: 7}
		line := cmdlog.AppendLine(nil, &rec, "[::1]:5", hash)
		var r Record
		fs := v1Fields
		if err := fs.parse([]byte(strings.TrimSuffix(string(line), "\n")), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if r.Class != class || r.Result.String() != res.String() || r.Micros != rec.Time || r.VLen != 10 || r.TTL != -5 || r.Flags != 3 || r.RLen != 7 {
			t.Fatalf("%q: parsed %+v (class %v)", line, r, r.Class)
		}
		switch {
		case noKey:
			if r.Key != nil {
				t.Fatalf("%q: key %q, want none", line, r.Key)
			}
		case hash:
			if r.KeyLen != 18 || !strings.HasPrefix(string(r.Key), "h:") {
				t.Fatalf("%q: hashed key %q len %d", line, r.Key, r.KeyLen)
			}
		default:
			if r.KeyLen != len(key) {
				t.Fatalf("%q: key length %d, want %d", line, r.KeyLen, len(key))
			}
		}
	}
	text := map[cmdlog.Cmd]Class{
		cmdlog.CmdOther: ClassOther, cmdlog.CmdGet: ClassRead, cmdlog.CmdGets: ClassRead, cmdlog.CmdGat: ClassRead,
		cmdlog.CmdGats: ClassRead, cmdlog.CmdSet: ClassStore, cmdlog.CmdAdd: ClassStore, cmdlog.CmdReplace: ClassStore,
		cmdlog.CmdAppend: ClassStore, cmdlog.CmdPrepend: ClassStore, cmdlog.CmdCas: ClassStore, cmdlog.CmdDelete: ClassDelete,
		cmdlog.CmdIncr: ClassArith, cmdlog.CmdDecr: ClassArith, cmdlog.CmdTouch: ClassTouch, cmdlog.CmdFlushAll: ClassFlush,
		cmdlog.CmdMg: ClassRead, cmdlog.CmdMs: ClassStore, cmdlog.CmdMd: ClassDelete, cmdlog.CmdMa: ClassArith,
		cmdlog.CmdMn: ClassOther, cmdlog.CmdMe: ClassOther,
	}
	for c, class := range text {
		f(c, cmdlog.ResHit, []byte("key"), false, false, class)
	}
	bin := map[byte]Class{
		0x00: ClassRead, 0x09: ClassRead, 0x0c: ClassRead, 0x0d: ClassRead, 0x1d: ClassRead, 0x1e: ClassRead,
		0x23: ClassRead, 0x24: ClassRead, 0x01: ClassStore, 0x11: ClassStore, 0x02: ClassStore, 0x12: ClassStore,
		0x03: ClassStore, 0x13: ClassStore, 0x0e: ClassStore, 0x19: ClassStore, 0x0f: ClassStore, 0x1a: ClassStore,
		0x04: ClassDelete, 0x14: ClassDelete, 0x05: ClassArith, 0x15: ClassArith, 0x06: ClassArith, 0x16: ClassArith,
		0x1c: ClassTouch, 0x08: ClassFlush, 0x18: ClassFlush, 0x0a: ClassOther, 0x0b: ClassOther, 0x10: ClassOther,
	}
	for op, class := range bin {
		f(cmdlog.BinCmd(op), cmdlog.ResOK, []byte("key"), false, false, class)
	}
	for r := cmdlog.ResOK; r <= cmdlog.ResError; r++ {
		f(cmdlog.CmdGet, r, []byte("key"), false, false, ClassRead)
	}
	f(cmdlog.CmdSet, cmdlog.ResStored, []byte("a key\x00"), false, false, ClassStore) // b64
	f(cmdlog.CmdSet, cmdlog.ResStored, []byte{}, false, false, ClassStore)            // "b64:"
	f(cmdlog.CmdSet, cmdlog.ResStored, []byte("secret"), false, true, ClassStore)     // h:
	f(cmdlog.CmdFlushAll, cmdlog.ResOK, nil, true, false, ClassFlush)
}
