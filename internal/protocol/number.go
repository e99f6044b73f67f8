package protocol

// Numbers in the text and meta protocols are read by C's strtoull/strtol
// wrapped in memcached's safe_strto* helpers (util.c). Their rules are odd
// enough that clients meet them (leading whitespace and a '+' are accepted,
// "-0" is a valid flags value, 2^32+1 as flags stores 1), so they are
// emulated here rather than approximated with strconv.

import "math"

// MaxKeyLen is memcached's KEY_MAX_LENGTH.
const MaxKeyLen = 250

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// strtou emulates strtoull on tok followed by a NUL or whitespace, plus the
// checks every safe_strto* makes: at least one digit, no overflow, and
// nothing but whitespace or the end after the digits. It returns the
// magnitude and whether a '-' sign was seen.
func strtou(tok []byte) (v uint64, neg, ok bool) {
	i := 0
	for i < len(tok) && isSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start, overflow := i, false
	for ; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
		d := uint64(tok[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if i == start || overflow || i < len(tok) && !isSpace(tok[i]) {
		return 0, false, false
	}
	return v, neg, true
}

// parseUint64 is safe_strtoull (and safe_strtoul on 64-bit): strtoull
// negates a '-' number, and memcached refuses the result only when it then
// looks negative as a signed value.
func parseUint64(tok []byte) (uint64, bool) {
	v, neg, ok := strtou(tok)
	if !ok {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
}

// parseUint32 is safe_strtoul into a 32-bit field: parsed as 64 bits, then
// truncated, as memcached does for client flags.
func parseUint32(tok []byte) (uint32, bool) {
	v, ok := parseUint64(tok)
	return uint32(v), ok
}

// parseInt32 is safe_strtol: strtol's range is a 64-bit long, and the result
// is stored into an int32 without a range check (2^32+2 reads as 2).
func parseInt32(tok []byte) (int32, bool) {
	v, neg, ok := strtou(tok)
	if !ok || !neg && v > 1<<63-1 || neg && v > 1<<63 {
		return 0, false
	}
	n := int64(v)
	if neg {
		n = -n
	}
	return int32(n), true
}

// ParseCounter reads an item's value the way incr, decr and ma do:
// safe_strtoull on the data, which memcached follows with "\r\n" (so the
// trailing spaces of a shortened counter are fine).
func ParseCounter(value []byte) (uint64, bool) { return parseUint64(value) }
