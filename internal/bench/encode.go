package bench

import "strconv"

// Requests in the three wire formats the generator speaks: memcached's text
// protocol, its meta protocol, and RESP, so the same workloads can be run
// against Redis for the durable comparisons.

type opKind uint8

const (
	opGet opKind = iota
	opSet
	opDelete
	opIncr
	opAdd // creates a counter that an incr missed, as applications do
)

// encoder appends requests to a write buffer.
type encoder struct {
	proto string
	ks    *keySpace
	key   []byte // scratch
}

func (e *encoder) appendGet(b []byte, ids []int) []byte {
	switch e.proto {
	case "meta":
		for _, id := range ids {
			b = append(b, "mg "...)
			b = e.ks.appendKey(b, id)
			b = append(b, " v\r\n"...)
		}
	case "resp":
		if len(ids) == 1 {
			b = append(b, "*2\r\n$3\r\nGET\r\n"...)
		} else {
			b = appendRESPHeader(b, '*', len(ids)+1)
			b = append(b, "$4\r\nMGET\r\n"...)
		}
		for _, id := range ids {
			e.key = e.ks.appendKey(e.key[:0], id)
			b = appendBulk(b, e.key)
		}
	default:
		b = append(b, "get"...)
		for _, id := range ids {
			b = append(b, ' ')
			b = e.ks.appendKey(b, id)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

func (e *encoder) appendSet(b []byte, id int, val []byte, ttl int) []byte {
	switch e.proto {
	case "meta":
		b = append(b, "ms "...)
		b = e.ks.appendKey(b, id)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(val)), 10)
		if ttl > 0 {
			b = append(b, " T"...)
			b = strconv.AppendInt(b, int64(ttl), 10)
		}
		b = append(b, "\r\n"...)
	case "resp":
		if ttl > 0 {
			b = append(b, "*5\r\n$3\r\nSET\r\n"...)
		} else {
			b = append(b, "*3\r\n$3\r\nSET\r\n"...)
		}
		e.key = e.ks.appendKey(e.key[:0], id)
		b = appendBulk(b, e.key)
		b = appendBulk(b, val)
		if ttl > 0 {
			b = append(b, "$2\r\nEX\r\n"...)
			e.key = strconv.AppendInt(e.key[:0], int64(ttl), 10)
			b = appendBulk(b, e.key)
		}
		return b
	default:
		b = append(b, "set "...)
		b = e.ks.appendKey(b, id)
		b = append(b, " 0 "...)
		b = strconv.AppendInt(b, int64(ttl), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(val)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, val...)
	return append(b, "\r\n"...)
}

func (e *encoder) appendDelete(b []byte, id int) []byte {
	switch e.proto {
	case "meta":
		b = append(b, "md "...)
	case "resp":
		b = append(b, "*2\r\n$3\r\nDEL\r\n"...)
		e.key = e.ks.appendKey(e.key[:0], id)
		return appendBulk(b, e.key)
	default:
		b = append(b, "delete "...)
	}
	b = e.ks.appendKey(b, id)
	return append(b, "\r\n"...)
}

func (e *encoder) appendIncr(b []byte, id int) []byte {
	switch e.proto {
	case "meta":
		b = append(b, "ma "...)
		b = e.ks.appendCounterKey(b, id)
		return append(b, "\r\n"...)
	case "resp":
		b = append(b, "*2\r\n$4\r\nINCR\r\n"...)
		e.key = e.ks.appendCounterKey(e.key[:0], id)
		return appendBulk(b, e.key)
	default:
		b = append(b, "incr "...)
		b = e.ks.appendCounterKey(b, id)
		return append(b, " 1\r\n"...)
	}
}

// appendAdd creates counter id with the value 1 unless it exists.
func (e *encoder) appendAdd(b []byte, id int) []byte {
	switch e.proto {
	case "meta":
		b = append(b, "ms "...)
		b = e.ks.appendCounterKey(b, id)
		return append(b, " 1 ME\r\n1\r\n"...)
	case "resp":
		b = append(b, "*3\r\n$5\r\nSETNX\r\n"...)
		e.key = e.ks.appendCounterKey(e.key[:0], id)
		b = appendBulk(b, e.key)
		return append(b, "$1\r\n1\r\n"...)
	default:
		b = append(b, "add "...)
		b = e.ks.appendCounterKey(b, id)
		return append(b, " 0 0 1\r\n1\r\n"...)
	}
}

func appendRESPHeader(b []byte, c byte, n int) []byte {
	b = append(b, c)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n"...)
}

func appendBulk(b, s []byte) []byte {
	b = appendRESPHeader(b, '$', len(s))
	b = append(b, s...)
	return append(b, "\r\n"...)
}
