package server

// The binary protocol script format and its runner. A script under
// testdata/binary/ is a conversation, one packet a line:
//
//	# comment
//	! nocompare          (file option: do not replay against real memcached)
//	! nocas              (file option: run with CAS disabled, memcached -C)
//	> set key=foo value=bar flags=1 exp=0 cas=0 opaque=7
//	> getq key=foo       (consecutive > lines are sent as one write)
//	< set cas=*          (expected replies of the batch, in order)
//	< getq flags=1 value=bar cas=*
//	< close              (the server closed the connection)
//	< stats              (any stat pairs, then the empty terminator)
//	time +2              (advance the clock; implies nocompare)
//	reconnect            (a new connection to the same cache)
//
// Request fields: key, value (a bare word, a Go-quoted string or hex:…),
// vlen=N (a value of N 'x'), extras=hex, flags, exp, delta, initial, cas,
// opaque, and the raw header overrides magic, keylen, extlen, bodylen. A
// line "> raw hex" sends bytes as they are. Reply fields: status (ok,
// notfound, exists, toolarge, invalid, notstored, nonnumeric, unknown,
// nomem or a number), flags (4 bytes of extras), extras=hex, key, value
// (or value=* for any), num=N (an 8-byte incr/decr result), cas (a number,
// or * for any nonzero value) and opaque. An error status with no key or
// value expects memcached's message. The default opaque is 0xdeadbeef.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"petrel/internal/protocol"
)

const scriptOpaque = 0xdeadbeef

var binOpNames = map[string]uint8{
	"get": 0x00, "set": 0x01, "add": 0x02, "replace": 0x03, "delete": 0x04,
	"incr": 0x05, "decr": 0x06, "quit": 0x07, "flush": 0x08, "getq": 0x09,
	"noop": 0x0a, "version": 0x0b, "getk": 0x0c, "getkq": 0x0d, "append": 0x0e,
	"prepend": 0x0f, "stat": 0x10, "setq": 0x11, "addq": 0x12, "replaceq": 0x13,
	"deleteq": 0x14, "incrq": 0x15, "decrq": 0x16, "quitq": 0x17, "flushq": 0x18,
	"appendq": 0x19, "prependq": 0x1a, "verbosity": 0x1b, "touch": 0x1c,
	"gat": 0x1d, "gatq": 0x1e, "sasl-list": 0x20, "sasl-auth": 0x21,
	"sasl-step": 0x22, "gatk": 0x23, "gatkq": 0x24,
}

var binStatusNames = map[string]uint16{
	"ok": protocol.BinStatusOK, "notfound": protocol.BinStatusNotFound,
	"exists": protocol.BinStatusExists, "toolarge": protocol.BinStatusTooLarge,
	"invalid": protocol.BinStatusInvalid, "notstored": protocol.BinStatusNotStored,
	"nonnumeric": protocol.BinStatusNonNumeric, "unknown": protocol.BinStatusUnknown,
	"nomem": protocol.BinStatusNoMemory,
}

// scriptExpect is one expected reply line.
type scriptExpect struct {
	line     int
	text     string
	close    bool
	stats    bool
	op       uint8
	status   uint16
	extras   []byte
	key      []byte
	value    []byte
	anyValue bool
	cas      uint64
	anyCAS   bool
	opaque   uint32
}

// scriptBatch is what one write sends and what it must get back.
type scriptBatch struct {
	line      int
	in        []byte
	want      []scriptExpect
	advance   int64 // seconds to move the clock before sending
	reconnect bool  // open a new connection before sending
}

type script struct {
	name      string
	nocompare bool
	nocas     bool
	batches   []*scriptBatch
}

func loadScript(path string) (*script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open script: %w", err)
	}
	defer f.Close()
	sc := &script{name: path}
	var cur *scriptBatch
	var advance int64
	reconnect := false
	in := bufio.NewScanner(f)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; in.Scan(); n++ {
		line := strings.TrimSpace(in.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '!':
			for _, o := range strings.Fields(line[1:]) {
				switch o {
				case "nocompare":
					sc.nocompare = true
				case "nocas":
					sc.nocas = true
				default:
					return nil, fmt.Errorf("%s:%d: unknown option %q", path, n, o)
				}
			}
		case line == "reconnect":
			reconnect, cur = true, nil
		case strings.HasPrefix(line, "time "):
			d, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(line[5:]), "+"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			advance += d
			sc.nocompare = true
			cur = nil
		case line[0] == '>':
			if cur == nil || len(cur.want) > 0 {
				cur = &scriptBatch{line: n, advance: advance, reconnect: reconnect}
				advance, reconnect = 0, false
				sc.batches = append(sc.batches, cur)
			}
			p, err := parseScriptRequest(strings.TrimSpace(line[1:]))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			cur.in = append(cur.in, p...)
		case line[0] == '<':
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: reply before any request", path, n)
			}
			e, err := parseScriptExpect(strings.TrimSpace(line[1:]))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			e.line = n
			cur.want = append(cur.want, e)
		default:
			return nil, fmt.Errorf("%s:%d: cannot parse %q", path, n, line)
		}
	}
	return sc, in.Err()
}

// scriptFields splits `op a=b c="d e"` into the op and its fields.
func scriptFields(s string) (string, map[string]string, error) {
	var toks []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		i := strings.IndexAny(s, " \"")
		switch {
		case i < 0:
			toks, s = append(toks, s), ""
		case s[i] == ' ':
			toks, s = append(toks, s[:i]), s[i:]
		default:
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return "", nil, fmt.Errorf("bad quoted string in %q: %w", s, err)
			}
			u, _ := strconv.Unquote(q)
			toks, s = append(toks, s[:i]+u), s[i+len(q):]
		}
	}
	if len(toks) == 0 {
		return "", nil, fmt.Errorf("empty line")
	}
	fields := map[string]string{}
	for _, t := range toks[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return "", nil, fmt.Errorf("field %q has no =", t)
		}
		fields[k] = v
	}
	return toks[0], fields, nil
}

func scriptBytes(v string) ([]byte, error) {
	if h, ok := strings.CutPrefix(v, "hex:"); ok {
		return hex.DecodeString(h)
	}
	return []byte(v), nil
}

func scriptOp(name string) (uint8, error) {
	if op, ok := binOpNames[name]; ok {
		return op, nil
	}
	n, err := strconv.ParseUint(name, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown opcode %q", name)
	}
	return uint8(n), nil
}

func parseScriptRequest(s string) ([]byte, error) {
	if h, ok := strings.CutPrefix(s, "raw "); ok {
		return hex.DecodeString(strings.ReplaceAll(h, " ", ""))
	}
	name, f, err := scriptFields(s)
	if err != nil {
		return nil, err
	}
	op, err := scriptOp(name)
	if err != nil {
		return nil, err
	}
	num := func(k string, def uint64) (uint64, error) {
		v, ok := f[k]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("field %s: %w", k, err)
		}
		return n, nil
	}
	r := protocol.BinRequest{}
	r.Magic, r.Opcode, r.Opaque = protocol.BinReqMagic, op, scriptOpaque
	if r.Key, err = scriptBytes(f["key"]); err != nil {
		return nil, err
	}
	if r.Value, err = scriptBytes(f["value"]); err != nil {
		return nil, err
	}
	vals := map[string]uint64{}
	for _, k := range []string{"flags", "exp", "delta", "initial", "cas", "opaque", "vlen", "magic"} {
		if vals[k], err = num(k, 0); err != nil {
			return nil, err
		}
	}
	if _, ok := f["vlen"]; ok {
		r.Value = bytes.Repeat([]byte("x"), int(vals["vlen"]))
	}
	if _, ok := f["opaque"]; ok {
		r.Opaque = uint32(vals["opaque"])
	}
	if _, ok := f["magic"]; ok {
		r.Magic = uint8(vals["magic"])
	}
	r.CAS = vals["cas"]
	base, _ := binBase(op)
	_, hasExp := f["exp"]
	switch {
	case f["extras"] != "":
		if f["extras"] != "-" {
			if r.Extras, err = hex.DecodeString(f["extras"]); err != nil {
				return nil, err
			}
		}
	case base == protocol.BinSet || base == protocol.BinAdd || base == protocol.BinReplace:
		r.Extras = binary.BigEndian.AppendUint32(nil, uint32(vals["flags"]))
		r.Extras = binary.BigEndian.AppendUint32(r.Extras, uint32(vals["exp"]))
	case base == protocol.BinIncrement || base == protocol.BinDecrement:
		r.Extras = binary.BigEndian.AppendUint64(nil, vals["delta"])
		r.Extras = binary.BigEndian.AppendUint64(r.Extras, vals["initial"])
		r.Extras = binary.BigEndian.AppendUint32(r.Extras, uint32(vals["exp"]))
	case base == protocol.BinTouch || base == protocol.BinGAT || base == protocol.BinGATK,
		hasExp:
		r.Extras = binary.BigEndian.AppendUint32(nil, uint32(vals["exp"]))
	}
	p := protocol.AppendBinRequest(nil, &r)
	for k, off := range map[string]int{"keylen": 2, "extlen": 4, "bodylen": 8} {
		v, ok := f[k]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		switch off {
		case 2:
			binary.BigEndian.PutUint16(p[2:], uint16(n))
		case 4:
			p[4] = uint8(n)
		case 8:
			binary.BigEndian.PutUint32(p[8:], uint32(n))
		}
	}
	return p, nil
}

func parseScriptExpect(s string) (scriptExpect, error) {
	e := scriptExpect{text: s}
	switch s {
	case "close":
		e.close = true
		return e, nil
	case "stats":
		e.stats, e.op, e.opaque = true, protocol.BinStat, scriptOpaque
		return e, nil
	}
	name, f, err := scriptFields(s)
	if err != nil {
		return e, err
	}
	if e.op, err = scriptOp(name); err != nil {
		return e, err
	}
	e.opaque = scriptOpaque
	for k, v := range f {
		switch k {
		case "status":
			st, ok := binStatusNames[v]
			if !ok {
				n, err := strconv.ParseUint(v, 0, 16)
				if err != nil {
					return e, fmt.Errorf("unknown status %q", v)
				}
				st = uint16(n)
			}
			e.status = st
		case "flags":
			n, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return e, fmt.Errorf("flags: %w", err)
			}
			e.extras = binary.BigEndian.AppendUint32(nil, uint32(n))
		case "extras":
			if e.extras, err = hex.DecodeString(v); err != nil {
				return e, err
			}
		case "key":
			if e.key, err = scriptBytes(v); err != nil {
				return e, err
			}
		case "value":
			if v == "*" {
				e.anyValue = true
			} else if e.value, err = scriptBytes(v); err != nil {
				return e, err
			}
		case "num":
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				return e, fmt.Errorf("num: %w", err)
			}
			e.value = binary.BigEndian.AppendUint64(nil, n)
		case "cas":
			if v == "*" {
				e.anyCAS = true
			} else if e.cas, err = strconv.ParseUint(v, 0, 64); err != nil {
				return e, fmt.Errorf("cas: %w", err)
			}
		case "opaque":
			n, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return e, fmt.Errorf("opaque: %w", err)
			}
			e.opaque = uint32(n)
		default:
			return e, fmt.Errorf("unknown reply field %q", k)
		}
	}
	if _, ok := f["value"]; !ok && e.status != protocol.BinStatusOK && e.key == nil && f["num"] == "" {
		e.value = []byte(protocol.BinStatusText(e.status))
	}
	return e, nil
}

// binPacket is one decoded reply.
type binPacket struct {
	h                  protocol.BinHeader
	extras, key, value []byte
}

func (p binPacket) String() string {
	return fmt.Sprintf("op=%#02x status=%#x extras=%x key=%q value=%q cas=%d opaque=%#x",
		p.h.Opcode, p.h.VBucket, p.extras, p.key, p.value, p.h.CAS, p.h.Opaque)
}

// splitReplies decodes a stream of reply packets; rest is what did not
// decode as a whole packet.
func splitReplies(b []byte) (ps []binPacket, rest []byte) {
	for len(b) >= protocol.BinHeaderLen {
		var p binPacket
		protocol.ParseBinHeader(b, &p.h)
		n := p.h.Len()
		if p.h.Magic != protocol.BinResMagic || len(b) < n || p.h.ValueLen() < 0 {
			break
		}
		e := protocol.BinHeaderLen + int(p.h.ExtLen)
		k := e + int(p.h.KeyLen)
		p.extras, p.key, p.value = b[protocol.BinHeaderLen:e], b[e:k], b[k:n]
		ps = append(ps, p)
		b = b[n:]
	}
	return ps, b
}

// match checks one batch's output against its expectations.
func (b *scriptBatch) match(out []byte, closed bool) error {
	ps, rest := splitReplies(out)
	if len(rest) > 0 {
		return fmt.Errorf("undecodable reply bytes %x", rest)
	}
	i := 0
	for _, e := range b.want {
		switch {
		case e.close:
			if !closed {
				return fmt.Errorf("line %d: want close, connection still open", e.line)
			}
			continue
		case e.stats:
			for i < len(ps) && ps[i].h.Opcode == protocol.BinStat && len(ps[i].key) > 0 {
				i++
			}
		}
		if i >= len(ps) {
			return fmt.Errorf("line %d: want %q, no more replies", e.line, e.text)
		}
		p := ps[i]
		i++
		ok := p.h.Opcode == e.op && p.h.VBucket == e.status && p.h.Opaque == e.opaque &&
			bytes.Equal(p.extras, e.extras) && bytes.Equal(p.key, e.key) &&
			(e.anyValue || bytes.Equal(p.value, e.value)) &&
			((e.anyCAS && p.h.CAS != 0) || (!e.anyCAS && p.h.CAS == e.cas))
		if !ok {
			return fmt.Errorf("line %d: want %q, got %v", e.line, e.text, p)
		}
	}
	if i < len(ps) {
		return fmt.Errorf("batch at line %d: unexpected reply %v", b.line, ps[i])
	}
	wantClose := len(b.want) > 0 && b.want[len(b.want)-1].close
	if closed && !wantClose {
		return fmt.Errorf("batch at line %d: connection closed unexpectedly", b.line)
	}
	return nil
}

func (b *scriptBatch) hasStats() bool {
	for _, e := range b.want {
		if e.stats {
			return true
		}
	}
	return false
}
