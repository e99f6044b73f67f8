package protocol

import "strconv"

// Reply lines of the text protocol, "\r\n" included.
const (
	ReplyStored    = "STORED\r\n"
	ReplyNotStored = "NOT_STORED\r\n"
	ReplyExists    = "EXISTS\r\n"
	ReplyNotFound  = "NOT_FOUND\r\n"
	ReplyDeleted   = "DELETED\r\n"
	ReplyTouched   = "TOUCHED\r\n"
	ReplyEnd       = "END\r\n"
	ReplyOK        = "OK\r\n"
	ReplyReset     = "RESET\r\n"
	ReplyError     = "ERROR\r\n"

	ReplyBadDataChunk = "CLIENT_ERROR bad data chunk\r\n"
	ReplyNonNumeric   = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	ReplyTooLarge     = "SERVER_ERROR object too large for cache\r\n"
	ReplyNoMemory     = "SERVER_ERROR out of memory storing object\r\n"
)

// AppendValue appends a get/gets reply for one item:
// "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n".
func AppendValue(dst, key []byte, flags uint32, data []byte, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	dst = append(dst, "\r\n"...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// AppendLine appends s and "\r\n".
func AppendLine(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, "\r\n"...)
}

// AppendUintLine appends v in decimal and "\r\n" (the incr/decr reply).
func AppendUintLine(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, "\r\n"...)
}

// AppendStat appends "STAT <name> <value>\r\n".
func AppendStat(dst []byte, name, value string) []byte {
	dst = append(dst, "STAT "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}
