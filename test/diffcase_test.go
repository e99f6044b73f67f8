package test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The case files in testdata/diff are plain text, one request script per
// case. The format (see testdata/diff/README for a longer description):
//
//	# a comment
//	% args -I 2m               file level, before the first case: extra server flags
//	% noflush                  file level: no flush_all before each case
//	=== name of the case       starts a case
//	> get a\r\n                bytes to send; escapes \r \n \t \0 \\ \xHH, no implicit newline
//	> get \[k*251]\r\n         \[TEXT*N] is TEXT (no escapes, no "]") repeated N times
//	x> 80 0a 00 00             bytes in hex; spaces and _ are ignored
//	bin> op=set key=a extras=deadbeef00000000 value=x opaque=7
//	                           one binary-protocol request, lengths computed
//	sync                       send what came before and wait for its replies
//	mask> REGEX                also mask matches of REGEX in both replies
//
// Every case runs on a new connection after a flush_all. Its bytes are sent,
// the client half-closes the connection, and everything the server sends
// until it closes is the reply. `sync` splits a case in rounds: a round ends
// with a no-op (mn, or a binary noop) and the round's reply is read up to the
// no-op's reply, so that the next round can use $cas, the last CAS value the
// server returned, in place of a number.

// diffCase is one request script.
type diffCase struct {
	name   string
	file   string
	line   int
	rounds [][]step // steps of each round; rounds are separated by sync
	masks  []*regexp.Regexp
}

// step is one piece of a request. $cas in it is replaced when it is sent.
type step struct {
	raw []byte   // literal bytes
	bin *binSpec // or a binary packet
}

type diffFile struct {
	args    []string
	noFlush bool // cases share state; memcached -C hides items stored in the second of a flush_all
	cases   []*diffCase
}

func parseDiffFile(path string) (*diffFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &diffFile{}
	var c *diffCase
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		errorf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, i+1, fmt.Sprintf(format, a...))
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			c = &diffCase{name: strings.TrimSpace(name), file: path, line: i + 1, rounds: [][]step{nil}}
			f.cases = append(f.cases, c)
			continue
		}
		if line == "% noflush" {
			if c != nil {
				return nil, errorf("%% noflush must come before the first case")
			}
			f.noFlush = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "% args"); ok {
			if c != nil {
				return nil, errorf("%% args must come before the first case")
			}
			f.args = append(f.args, strings.Fields(rest)...)
			continue
		}
		if c == nil {
			return nil, errorf("expected \"=== name\" before %q", line)
		}
		add := func(s step) { c.rounds[len(c.rounds)-1] = append(c.rounds[len(c.rounds)-1], s) }
		verb, arg, _ := strings.Cut(line, " ")
		switch verb {
		case ">":
			b, err := unescape(arg)
			if err != nil {
				return nil, errorf("%v", err)
			}
			add(step{raw: b})
		case "x>":
			b, err := hex.DecodeString(strings.NewReplacer(" ", "", "_", "").Replace(arg))
			if err != nil {
				return nil, errorf("x>: %v", err)
			}
			add(step{raw: b})
		case "bin>":
			spec, err := parseBinSpec(arg)
			if err != nil {
				return nil, errorf("bin>: %v", err)
			}
			add(step{bin: spec})
		case "sync":
			c.rounds = append(c.rounds, nil)
		case "mask>":
			re, err := regexp.Compile(arg)
			if err != nil {
				return nil, errorf("mask>: %v", err)
			}
			c.masks = append(c.masks, re)
		default:
			return nil, errorf("unknown line %q", line)
		}
	}
	return f, nil
}

// unescape decodes the escapes of a "> " line: \r \n \t \0 \\ \xHH, and
// \[TEXT*N] for TEXT repeated N times (long keys and values).
func unescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("trailing backslash in %q", s)
		}
		i++
		switch s[i] {
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '0':
			b = append(b, 0)
		case '\\':
			b = append(b, '\\')
		case '[':
			end := strings.IndexByte(s[i:], ']')
			star := strings.LastIndexByte(s[i:i+max(end, 0)], '*')
			if end < 0 || star < 0 {
				return nil, fmt.Errorf("\\[ without TEXT*N] in %q", s)
			}
			n, err := strconv.Atoi(s[i+star+1 : i+end])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bad count in \\[%s]", s[i+1:i+end])
			}
			b = append(b, bytes.Repeat([]byte(s[i+1:i+star]), n)...)
			i += end
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape in %q", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape in %q", s)
			}
			b = append(b, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b, nil
}

// binOps names the binary protocol's opcodes (memcached's protocol_binary.h).
var binOps = map[string]byte{
	"get": 0x00, "set": 0x01, "add": 0x02, "replace": 0x03, "delete": 0x04,
	"incr": 0x05, "decr": 0x06, "quit": 0x07, "flush": 0x08, "getq": 0x09,
	"noop": 0x0a, "version": 0x0b, "getk": 0x0c, "getkq": 0x0d, "append": 0x0e,
	"prepend": 0x0f, "stat": 0x10, "setq": 0x11, "addq": 0x12, "replaceq": 0x13,
	"deleteq": 0x14, "incrq": 0x15, "decrq": 0x16, "quitq": 0x17, "flushq": 0x18,
	"appendq": 0x19, "prependq": 0x1a, "verbosity": 0x1b, "touch": 0x1c,
	"gat": 0x1d, "gatq": 0x1e, "sasl_list": 0x20, "sasl_auth": 0x21,
	"sasl_step": 0x22, "gatk": 0x23, "gatkq": 0x24,
}

// binSpec is a binary request: fields named in a bin> line. The lengths
// are computed unless given, so that malformed packets can be written too.
type binSpec struct {
	magic, op, datatype     byte
	vbucket                 uint16
	opaque                  uint32
	cas                     string // a number or $cas
	key, extras, value      []byte
	keylen, extlen, bodylen int // -1: computed
}

func parseBinSpec(s string) (*binSpec, error) {
	b := &binSpec{magic: 0x80, cas: "0", keylen: -1, extlen: -1, bodylen: -1}
	for _, field := range strings.Fields(s) {
		name, val, ok := strings.Cut(field, "=")
		if !ok {
			return nil, fmt.Errorf("field %q is not name=value", field)
		}
		num := func(bits int) (uint64, error) { return strconv.ParseUint(val, 0, bits) }
		var err error
		var n uint64
		switch name {
		case "op":
			if code, ok := binOps[val]; ok {
				b.op = code
			} else if n, err = num(8); err == nil {
				b.op = byte(n)
			}
		case "magic":
			n, err = num(8)
			b.magic = byte(n)
		case "datatype":
			n, err = num(8)
			b.datatype = byte(n)
		case "vbucket":
			n, err = num(16)
			b.vbucket = uint16(n)
		case "opaque":
			n, err = num(32)
			b.opaque = uint32(n)
		case "cas":
			b.cas = val
		case "key":
			b.key, err = unescape(val)
		case "value":
			b.value, err = unescape(val)
		case "extras":
			b.extras, err = hex.DecodeString(strings.ReplaceAll(val, "_", ""))
		case "keylen":
			n, err = num(16)
			b.keylen = int(n)
		case "extlen":
			n, err = num(8)
			b.extlen = int(n)
		case "bodylen":
			n, err = num(32)
			b.bodylen = int(n)
		default:
			return nil, fmt.Errorf("unknown field %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("field %q: %v", field, err)
		}
	}
	return b, nil
}

// encode builds the packet; lastCAS replaces cas=$cas.
func (b *binSpec) encode(lastCAS uint64) ([]byte, error) {
	cas := lastCAS
	if b.cas != "$cas" {
		var err error
		if cas, err = strconv.ParseUint(b.cas, 0, 64); err != nil {
			return nil, fmt.Errorf("cas=%s: %v", b.cas, err)
		}
	}
	or := func(v, def int) int {
		if v >= 0 {
			return v
		}
		return def
	}
	h := make([]byte, 24)
	h[0], h[1] = b.magic, b.op
	binary.BigEndian.PutUint16(h[2:], uint16(or(b.keylen, len(b.key))))
	h[4] = byte(or(b.extlen, len(b.extras)))
	h[5] = b.datatype
	binary.BigEndian.PutUint16(h[6:], b.vbucket)
	binary.BigEndian.PutUint32(h[8:], uint32(or(b.bodylen, len(b.extras)+len(b.key)+len(b.value))))
	binary.BigEndian.PutUint32(h[12:], b.opaque)
	binary.BigEndian.PutUint64(h[16:], cas)
	h = append(h, b.extras...)
	h = append(h, b.key...)
	return append(h, b.value...), nil
}
