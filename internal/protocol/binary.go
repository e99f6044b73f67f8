package protocol

// The binary protocol codec. A binary packet is a fixed 24-byte header
// followed by a body of extras, key and value, in that order; the header
// gives the lengths of the three parts (extras and key directly, the value
// as what is left of the body). The layout is memcached's
// protocol_binary.h, the "memcached binary protocol" of 2008 that
// memcached 1.6 still serves although it is deprecated.
//
// The decoder fills a caller-owned BinRequest whose slices alias the input,
// so parsing allocates nothing; it checks only what the framing needs (the
// magic byte and that extras plus key fit in the body). Which lengths each
// opcode accepts is the executor's business, because memcached answers
// those errors with a reply rather than by dropping the connection.

import (
	"encoding/binary"
	"errors"
)

// Magic bytes and sizes.
const (
	BinReqMagic  = 0x80 // first byte of every request
	BinResMagic  = 0x81 // first byte of every response
	BinHeaderLen = 24
	// BinMaxKeyLen is memcached's KEY_MAX_LENGTH: the header allows 64 KiB
	// keys but memcached rejects anything longer than the text protocol's.
	BinMaxKeyLen = 250
)

// Opcodes memcached 1.6.18 knows. Those ending in Q are the quiet variants.
const (
	BinGet        = 0x00
	BinSet        = 0x01
	BinAdd        = 0x02
	BinReplace    = 0x03
	BinDelete     = 0x04
	BinIncrement  = 0x05
	BinDecrement  = 0x06
	BinQuit       = 0x07
	BinFlush      = 0x08
	BinGetQ       = 0x09
	BinNoop       = 0x0a
	BinVersion    = 0x0b
	BinGetK       = 0x0c
	BinGetKQ      = 0x0d
	BinAppend     = 0x0e
	BinPrepend    = 0x0f
	BinStat       = 0x10
	BinSetQ       = 0x11
	BinAddQ       = 0x12
	BinReplaceQ   = 0x13
	BinDeleteQ    = 0x14
	BinIncrementQ = 0x15
	BinDecrementQ = 0x16
	BinQuitQ      = 0x17
	BinFlushQ     = 0x18
	BinAppendQ    = 0x19
	BinPrependQ   = 0x1a
	BinVerbosity  = 0x1b
	BinTouch      = 0x1c
	BinGAT        = 0x1d
	BinGATQ       = 0x1e
	BinSASLList   = 0x20
	BinSASLAuth   = 0x21
	BinSASLStep   = 0x22
	BinGATK       = 0x23
	BinGATKQ      = 0x24
)

// Response status codes.
const (
	BinStatusOK         uint16 = 0x00
	BinStatusNotFound   uint16 = 0x01
	BinStatusExists     uint16 = 0x02
	BinStatusTooLarge   uint16 = 0x03
	BinStatusInvalid    uint16 = 0x04
	BinStatusNotStored  uint16 = 0x05
	BinStatusNonNumeric uint16 = 0x06
	BinStatusAuthError  uint16 = 0x20
	BinStatusUnknown    uint16 = 0x81
	BinStatusNoMemory   uint16 = 0x82
)

// Errors from ParseBinary. Both mean the stream cannot be framed any further.
var (
	ErrBinMagic   = errors.New("binary protocol: bad magic byte")
	ErrBinLengths = errors.New("binary protocol: extras and key longer than the body")
)

// BinHeader is a decoded 24-byte packet header. In a response VBucket
// carries the status.
type BinHeader struct {
	Magic    uint8
	Opcode   uint8
	KeyLen   uint16
	ExtLen   uint8
	DataType uint8
	VBucket  uint16
	BodyLen  uint32
	Opaque   uint32
	CAS      uint64
}

// Len is the length of the whole packet. It is an int so that a 4 GiB
// body cannot overflow it on 64-bit platforms.
func (h *BinHeader) Len() int { return BinHeaderLen + int(h.BodyLen) }

// PrefixLen is the length of the header, extras and key: what memcached
// reads before it decides what to do with a request.
func (h *BinHeader) PrefixLen() int { return BinHeaderLen + int(h.ExtLen) + int(h.KeyLen) }

// ValueLen is the length of the value, or negative when the extras and key
// claim more than the body holds.
func (h *BinHeader) ValueLen() int { return int(h.BodyLen) - int(h.ExtLen) - int(h.KeyLen) }

// ParseBinHeader decodes the first 24 bytes of b into h. It reports false
// when b is shorter than a header; it does not look at the magic byte.
func ParseBinHeader(b []byte, h *BinHeader) bool {
	if len(b) < BinHeaderLen {
		return false
	}
	h.Magic = b[0]
	h.Opcode = b[1]
	h.KeyLen = binary.BigEndian.Uint16(b[2:])
	h.ExtLen = b[4]
	h.DataType = b[5]
	h.VBucket = binary.BigEndian.Uint16(b[6:])
	h.BodyLen = binary.BigEndian.Uint32(b[8:])
	h.Opaque = binary.BigEndian.Uint32(b[12:])
	h.CAS = binary.BigEndian.Uint64(b[16:])
	return true
}

// BinRequest is one decoded request packet. Extras, Key and Value alias the
// buffer it was parsed from.
type BinRequest struct {
	BinHeader
	Extras []byte
	Key    []byte
	Value  []byte
}

// ParseBinary decodes the request at the start of buf into r and returns its
// length. When buf holds less than a whole packet it returns 0 and a nil
// error; r's header is then filled if buf holds at least 24 bytes, so that
// r.Len() says how much is needed. A bad magic byte or lengths that do not
// fit return an error: the stream cannot be resynchronised after either.
func ParseBinary(buf []byte, r *BinRequest) (int, error) { return parseBinary(buf, r, false) }

// ParseBinaryPrefix is ParseBinary for the header, extras and key only: it
// needs buf to hold r.PrefixLen() bytes, leaves r.Value nil and returns the
// prefix length. Executors use it to answer a request whose value is too
// large to buffer.
func ParseBinaryPrefix(buf []byte, r *BinRequest) (int, error) { return parseBinary(buf, r, true) }

// parseBinary parses the whole packet, or only its header, extras and key.
func parseBinary(buf []byte, r *BinRequest, prefixOnly bool) (int, error) {
	r.Extras, r.Key, r.Value = nil, nil, nil
	if !ParseBinHeader(buf, &r.BinHeader) {
		return 0, nil
	}
	if r.Magic != BinReqMagic {
		return 0, ErrBinMagic
	}
	if r.ValueLen() < 0 {
		return 0, ErrBinLengths
	}
	n := r.Len()
	if prefixOnly {
		n = r.PrefixLen()
	}
	if len(buf) < n {
		return 0, nil
	}
	r.split(buf[:n])
	return n, nil
}

// split slices a packet (or its prefix) into extras, key and value.
func (r *BinRequest) split(p []byte) {
	e := BinHeaderLen + int(r.ExtLen)
	k := e + int(r.KeyLen)
	r.Extras = p[BinHeaderLen:e:e]
	r.Key = p[e:k:k]
	r.Value = p[k:]
	if len(r.Value) == 0 {
		r.Value = nil
	}
}

// AppendBinHeader appends a 24-byte header.
func AppendBinHeader(dst []byte, h *BinHeader) []byte {
	dst = append(dst, h.Magic, h.Opcode)
	dst = binary.BigEndian.AppendUint16(dst, h.KeyLen)
	dst = append(dst, h.ExtLen, h.DataType)
	dst = binary.BigEndian.AppendUint16(dst, h.VBucket)
	dst = binary.BigEndian.AppendUint32(dst, h.BodyLen)
	dst = binary.BigEndian.AppendUint32(dst, h.Opaque)
	return binary.BigEndian.AppendUint64(dst, h.CAS)
}

// AppendBinRequest appends r as a request packet. The lengths come from
// r's slices, the other header fields from r.BinHeader (magic included, so
// that tests can build bad packets).
func AppendBinRequest(dst []byte, r *BinRequest) []byte {
	h := r.BinHeader
	h.KeyLen = uint16(len(r.Key))
	h.ExtLen = uint8(len(r.Extras))
	h.BodyLen = uint32(len(r.Extras) + len(r.Key) + len(r.Value))
	dst = AppendBinHeader(dst, &h)
	dst = append(dst, r.Extras...)
	dst = append(dst, r.Key...)
	return append(dst, r.Value...)
}

// AppendBinResponse appends a response packet with the given parts; any of
// extras, key and value may be nil.
func AppendBinResponse(dst []byte, opcode uint8, status uint16, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	h := BinHeader{
		Magic:   BinResMagic,
		Opcode:  opcode,
		KeyLen:  uint16(len(key)),
		ExtLen:  uint8(len(extras)),
		VBucket: status,
		BodyLen: uint32(len(extras) + len(key) + len(value)),
		Opaque:  opaque,
		CAS:     cas,
	}
	dst = AppendBinHeader(dst, &h)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// AppendBinError appends an error response whose body is status's message,
// as memcached words it.
func AppendBinError(dst []byte, opcode uint8, status uint16, opaque uint32) []byte {
	return AppendBinErrorText(dst, opcode, status, opaque, BinStatusText(status))
}

// AppendBinErrorText appends an error response with a message of the
// caller's choosing (memcached words its out-of-memory errors per command).
func AppendBinErrorText(dst []byte, opcode uint8, status uint16, opaque uint32, msg string) []byte {
	h := BinHeader{
		Magic:   BinResMagic,
		Opcode:  opcode,
		VBucket: status,
		BodyLen: uint32(len(msg)),
		Opaque:  opaque,
	}
	dst = AppendBinHeader(dst, &h)
	return append(dst, msg...)
}

// BinStatusText is the body memcached sends with an error status.
func BinStatusText(status uint16) string {
	switch status {
	case BinStatusNotFound:
		return "Not found"
	case BinStatusExists:
		return "Data exists for key."
	case BinStatusTooLarge:
		return "Too large."
	case BinStatusInvalid:
		return "Invalid arguments"
	case BinStatusNotStored:
		return "Not stored."
	case BinStatusNonNumeric:
		return "Non-numeric server-side value for incr or decr"
	case BinStatusAuthError:
		return "Auth failure."
	case BinStatusUnknown:
		return "Unknown command"
	case BinStatusNoMemory:
		return "Out of memory"
	}
	return ""
}
