package test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// normalizer renders a reply stream as readable text with the fields that
// legitimately differ between servers masked:
//
//   - CAS values (VALUE lines of gets, the c flag of meta replies, the CAS
//     of binary headers) become <cas1>, <cas2>, ... in order of first
//     appearance, so equal and different tokens stay equal and different;
//   - the values of STAT lines and binary stat packets;
//   - the version string;
//   - the fields of `me` (meta debug) that describe memcached's slab
//     internals: cas, la, cls and size.
//
// Text lines are shown one per line with \r\n visible; binary packets are
// shown one per line as bin< name=value fields.
type normalizer struct {
	casIDs  map[string]int
	lastCAS uint64 // the last CAS seen, for $cas in the next round
}

func (n *normalizer) cas(raw string) string {
	if raw == "0" {
		return "0"
	}
	if v, err := strconv.ParseUint(raw, 10, 64); err == nil {
		n.lastCAS = v
	}
	id, ok := n.casIDs[raw]
	if !ok {
		id = len(n.casIDs) + 1
		n.casIDs[raw] = id
	}
	return fmt.Sprintf("<cas%d>", id)
}

func (n *normalizer) render(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		if b[0] == 0x81 && len(b) >= 24 {
			if k := n.binaryPacket(&out, b); k > 0 {
				b = b[k:]
				continue
			}
		}
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			out.WriteString(escape(b) + " <no \\r\\n>\n")
			break
		}
		line := string(b[:i])
		b = b[i+2:]
		masked, dataLen := n.textLine(line)
		out.WriteString(escape([]byte(masked)) + `\r\n` + "\n")
		if dataLen >= 0 {
			k := min(dataLen+2, len(b))
			out.WriteString("  data: " + escape(b[:k]) + "\n")
			b = b[k:]
		}
	}
	return out.String()
}

// textLine masks one reply line; dataLen >= 0 says a data block follows.
func (n *normalizer) textLine(line string) (string, int) {
	f := strings.Split(line, " ")
	dataLen := -1
	switch f[0] {
	case "VALUE": // VALUE key flags bytes [cas]
		if len(f) >= 4 {
			dataLen, _ = strconv.Atoi(f[3])
		}
		if len(f) >= 5 {
			f[4] = n.cas(f[4])
		}
	case "VA": // VA size flags...
		if len(f) >= 2 {
			dataLen, _ = strconv.Atoi(f[1])
			n.metaFlags(f[2:])
		}
	case "HD", "EN", "NS", "EX", "NF", "MN":
		n.metaFlags(f[1:])
	case "VERSION":
		f = []string{"VERSION", "<version>"}
	case "STAT":
		if len(f) > 2 {
			f = []string{"STAT", f[1], "<value>"}
		}
	case "ME":
		for i, kv := range f {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			switch k {
			case "cas":
				f[i] = k + "=" + n.cas(v)
			case "la", "cls", "size":
				f[i] = k + "=<" + k + ">"
			}
		}
	}
	return strings.Join(f, " "), dataLen
}

// metaFlags masks the c (CAS) return flag of a meta reply.
func (n *normalizer) metaFlags(f []string) {
	for i, fl := range f {
		if len(fl) > 1 && fl[0] == 'c' {
			if _, err := strconv.ParseUint(fl[1:], 10, 64); err == nil {
				f[i] = "c" + n.cas(fl[1:])
			}
		}
	}
}

// binaryPacket renders one binary response at the start of b and returns
// its length, or 0 if b does not hold a whole one.
func (n *normalizer) binaryPacket(out *strings.Builder, b []byte) int {
	op, keyLen, extLen := b[1], int(binary.BigEndian.Uint16(b[2:])), int(b[4])
	dataType, status := b[5], binary.BigEndian.Uint16(b[6:])
	bodyLen := int(binary.BigEndian.Uint32(b[8:]))
	opaque, cas := binary.BigEndian.Uint32(b[12:]), binary.BigEndian.Uint64(b[16:])
	if len(b) < 24+bodyLen || extLen+keyLen > bodyLen {
		return 0
	}
	body := b[24 : 24+bodyLen]
	extras, key, value := body[:extLen], body[extLen:extLen+keyLen], body[extLen+keyLen:]
	name := fmt.Sprintf("0x%02x", op)
	for k, v := range binOps {
		if v == op {
			name = k
		}
	}
	valueStr := escape(value)
	switch {
	case op == binOps["version"] && status == 0:
		valueStr = "<version>"
	case op == binOps["stat"] && status == 0 && keyLen > 0:
		valueStr = "<value>"
	}
	fmt.Fprintf(out, "bin< op=%s status=0x%04x datatype=%d opaque=%d cas=%s", name, status, dataType, opaque, n.cas(strconv.FormatUint(cas, 10)))
	if extLen > 0 {
		fmt.Fprintf(out, " extras=%x", extras)
	}
	if keyLen > 0 {
		out.WriteString(" key=" + escape(key))
	}
	if len(value) > 0 {
		out.WriteString(" value=" + valueStr)
	}
	out.WriteString("\n")
	return 24 + bodyLen
}

// escape shows bytes as the "> " lines of the case files write them.
func escape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\\':
			s.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	return s.String()
}
