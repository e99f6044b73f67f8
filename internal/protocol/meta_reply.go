package protocol

// Meta reply builders. A meta reply is a two-letter code, optional return
// flags in the order the request gave them, "\r\n", and for VA a data block.
// Everything appends to a caller-owned buffer, so building a reply allocates
// nothing once the buffer has grown.

import "strconv"

// The meta reply codes.
const (
	MetaHD = "HD" // success (stored, deleted, hit without a value)
	MetaVA = "VA" // hit with a value: "VA <size> <flags>*\r\n<data>\r\n"
	MetaEN = "EN" // miss (mg, me)
	MetaNS = "NS" // not stored
	MetaEX = "EX" // CAS mismatch
	MetaNF = "NF" // not found
	MetaMN = "MN" // mn
	MetaME = "ME" // me
)

// AppendMetaVA appends "VA <size>", the start of a value reply.
func AppendMetaVA(dst []byte, size int) []byte {
	dst = append(dst, "VA "...)
	return strconv.AppendInt(dst, int64(size), 10)
}

// AppendMetaUint appends a return flag with an unsigned argument: " f5".
func AppendMetaUint(dst []byte, flag byte, v uint64) []byte {
	dst = append(dst, ' ', flag)
	return strconv.AppendUint(dst, v, 10)
}

// AppendMetaInt appends a return flag with a signed argument: " t-1".
func AppendMetaInt(dst []byte, flag byte, v int64) []byte {
	dst = append(dst, ' ', flag)
	return strconv.AppendInt(dst, v, 10)
}

// AppendMetaFlag appends a bare return flag: " W".
func AppendMetaFlag(dst []byte, flag byte) []byte { return append(dst, ' ', flag) }

// AppendMetaToken appends a request token unchanged (the O opaque): " O123".
func AppendMetaToken(dst, tok []byte) []byte {
	dst = append(dst, ' ')
	return append(dst, tok...)
}

// AppendMetaKey appends the k return flag. A binary key goes back in base64
// followed by a b flag, which tells the client to decode it.
func AppendMetaKey(dst, key []byte, binary bool) []byte {
	dst = append(dst, ' ', 'k')
	if !binary {
		return append(dst, key...)
	}
	dst = AppendBase64(dst, key)
	return append(dst, ' ', 'b')
}

// AppendMetaEnd ends a reply line.
func AppendMetaEnd(dst []byte) []byte { return append(dst, '\r', '\n') }

// AppendMetaError appends the error line for e.
func AppendMetaError(dst []byte, e MetaErr) []byte {
	dst = append(dst, e.String()...)
	return append(dst, '\r', '\n')
}

// MetaDebugInfo is what `me` shows about an item.
type MetaDebugInfo struct {
	Exp     int64  // memcached prints now-exptime (so a live TTL is negative), -1 for none
	LA      int64  // seconds since last access
	CAS     uint64 // CAS value
	Fetched bool   // fetched since stored
	Class   int    // slab class id
	Size    int    // item size in bytes
}

// AppendMetaDebug appends a whole `me` hit reply:
// "ME <key> exp=.. la=.. cas=.. fetch=yes|no cls=.. size=..\r\n".
func AppendMetaDebug(dst, key []byte, binary bool, d MetaDebugInfo) []byte {
	dst = append(dst, "ME "...)
	if binary {
		dst = AppendBase64(dst, key)
	} else {
		dst = append(dst, key...)
	}
	dst = append(dst, " exp="...)
	dst = strconv.AppendInt(dst, d.Exp, 10)
	dst = append(dst, " la="...)
	dst = strconv.AppendInt(dst, d.LA, 10)
	dst = append(dst, " cas="...)
	dst = strconv.AppendUint(dst, d.CAS, 10)
	if d.Fetched {
		dst = append(dst, " fetch=yes"...)
	} else {
		dst = append(dst, " fetch=no"...)
	}
	dst = append(dst, " cls="...)
	dst = strconv.AppendInt(dst, int64(d.Class), 10)
	dst = append(dst, " size="...)
	dst = strconv.AppendInt(dst, int64(d.Size), 10)
	return append(dst, '\r', '\n')
}
