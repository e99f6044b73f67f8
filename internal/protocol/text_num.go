package protocol

// Numbers in the text protocol are read by C's strtoull/strtol wrapped in
// memcached's safe_strto* helpers (util.c). Their rules are odd enough that
// clients meet them (leading whitespace and a '+' are accepted, "-0" is a
// valid flags value, 2^32+1 as flags stores 1), so they are emulated here
// rather than approximated with strconv.

import "math"

// textSpace is C's isspace in the C locale.
func textSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// textStrtou emulates strtoull on tok followed by a NUL or whitespace, plus
// the checks every safe_strto* makes: at least one digit, no overflow, and
// nothing but whitespace or the end after the digits. It returns the
// magnitude and whether a '-' sign was seen.
func textStrtou(tok []byte) (v uint64, neg, ok bool) {
	i := 0
	for i < len(tok) && textSpace(tok[i]) {
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
	if i == start || overflow || i < len(tok) && !textSpace(tok[i]) {
		return 0, false, false
	}
	return v, neg, true
}

// textUint64 is safe_strtoull: strtoull negates a '-' number, and memcached
// refuses the result only when it then looks negative as a signed value.
func textUint64(tok []byte) (uint64, bool) {
	v, neg, ok := textStrtou(tok)
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

// textUint32 is safe_strtoul into a 32-bit field: parsed as 64 bits, then
// truncated, as memcached does for client flags.
func textUint32(tok []byte) (uint32, bool) {
	v, ok := textUint64(tok)
	return uint32(v), ok
}

// textInt32 is safe_strtol: strtol's 64-bit range, then truncated to the
// int32 memcached stores it in (so 2147483648 becomes negative).
func textInt32(tok []byte) (int64, bool) {
	v, neg, ok := textStrtou(tok)
	if !ok || !neg && v > 1<<63-1 || neg && v > 1<<63 {
		return 0, false
	}
	n := int64(v)
	if neg {
		n = -n
	}
	return int64(int32(n)), true
}

// ParseIncrValue reads an item's value the way incr/decr do: safe_strtoull on
// the data, which in memcached is followed by "\r\n".
func ParseIncrValue(value []byte) (uint64, bool) { return textUint64(value) }
