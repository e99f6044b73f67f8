package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Type is the kind of effect a record holds.
type Type uint8

// Record types. Their values are part of the on-disk format.
const (
	// TypeSet stores an item: the result of set, add, replace, append,
	// prepend, cas, incr and decr (the resulting value, not the command).
	TypeSet Type = 1
	// TypeDelete removes Key.
	TypeDelete Type = 2
	// TypeTouch sets Key's absolute Exptime.
	TypeTouch Type = 3
	// TypeFlushAll invalidates every item stored at or before At. With
	// Delayed set it is a flush_all N (taking effect at At); without, an
	// immediate flush (At is the time it was run).
	TypeFlushAll Type = 4
)

func (t Type) String() string {
	switch t {
	case TypeSet:
		return "set"
	case TypeDelete:
		return "delete"
	case TypeTouch:
		return "touch"
	case TypeFlushAll:
		return "flush_all"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Record is one effect. Decoding fills a caller-owned Record whose Key and
// Value alias the decoded buffer, so a Record is reused rather than
// allocated per record.
type Record struct {
	Seq     uint64 // assigned by Append; monotonic and gap-free
	Type    Type
	Key     []byte // Set, Delete, Touch
	Value   []byte // Set
	Flags   uint32 // Set: client flags
	Exptime int64  // Set, Touch: absolute unix seconds, 0 = never
	CAS     uint64 // Set: the item's CAS; Append uses Seq when it is 0
	At      int64  // FlushAll: absolute unix seconds
	// Delayed marks a FlushAll that takes effect at At rather than at
	// its own sequence (flush_all N). Recovery needs it to tell a delayed
	// flush that came due while the server was down, which must take
	// everything written up to its deadline, from an immediate one. It is
	// a bit of the kind byte (delayedFlag); segments of format version 1
	// never set it, so their flush records are ambiguous.
	Delayed bool

	// groupEnd is set on the last record written before an fsync, and
	// groupFirst then holds the first sequence that fsync covered. They let
	// recovery tell a torn final group from corruption in the middle.
	groupEnd   bool
	groupFirst uint64
}

// Frame layout: length(4) crc(4) body(length). The CRC32-C covers the
// length field and the body, so a damaged length is caught too.
const (
	frameHeader = 8
	// body: seq(8) kind(1), then per type
	bodyFixed    = 9
	setFixed     = bodyFixed + 4 + 8 + 8 + 2 + 4 // flags exptime cas keylen vallen
	deleteFixed  = bodyFixed + 2                 // keylen
	touchFixed   = bodyFixed + 8 + 2             // exptime keylen
	flushFixed   = bodyFixed + 8                 // at
	groupEndFlag = 0x80
	delayedFlag  = 0x40 // FlushAll only (format version 2)
	kindFlags    = groupEndFlag | delayedFlag
	groupTrailer = 8 // group-end records end with the group's first seq

	// MaxKeyLen and MaxValueLen bound what one record can hold.
	MaxKeyLen   = 1<<16 - 1
	MaxValueLen = 1 << 30
	// maxBody is the largest body any record can have; a length beyond it
	// is corruption, whatever the file size.
	maxBody = setFixed + MaxKeyLen + MaxValueLen + groupTrailer
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decoding errors. ErrShort means the buffer ends inside a frame (a torn
// write at the end of a file); ErrCorrupt means the frame is damaged.
var (
	ErrShort   = errors.New("journal: short record")
	ErrCorrupt = errors.New("journal: corrupt record")
)

// EncodedLen is the size of r's frame on disk.
func EncodedLen(r *Record) int {
	return frameHeader + bodyLen(r)
}

func bodyLen(r *Record) int {
	n := 0
	if r.groupEnd {
		n = groupTrailer
	}
	switch r.Type {
	case TypeSet:
		return setFixed + len(r.Key) + len(r.Value) + n
	case TypeDelete:
		return deleteFixed + len(r.Key) + n
	case TypeTouch:
		return touchFixed + len(r.Key) + n
	case TypeFlushAll:
		return flushFixed + n
	}
	return 0
}

// validate reports whether r can be encoded.
func validate(r *Record) error {
	switch r.Type {
	case TypeSet, TypeDelete, TypeTouch, TypeFlushAll:
	default:
		return fmt.Errorf("journal: unknown record type %d", uint8(r.Type))
	}
	if r.Delayed && r.Type != TypeFlushAll {
		return fmt.Errorf("journal: a %v record cannot be delayed", r.Type)
	}
	if len(r.Key) > MaxKeyLen {
		return fmt.Errorf("journal: key of %d bytes exceeds %d", len(r.Key), MaxKeyLen)
	}
	if len(r.Value) > MaxValueLen {
		return fmt.Errorf("journal: value of %d bytes exceeds %d", len(r.Value), MaxValueLen)
	}
	return nil
}

// AppendRecord appends r's frame to dst and returns the extended slice. It
// allocates only when dst must grow. r must be valid (see Append).
func AppendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	n := bodyLen(r)
	dst = grow(dst, frameHeader+n)
	b := dst[start:]
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	body := b[frameHeader:]
	binary.LittleEndian.PutUint64(body[0:], r.Seq)
	kind := uint8(r.Type)
	if r.groupEnd {
		kind |= groupEndFlag
	}
	if r.Delayed {
		kind |= delayedFlag
	}
	body[8] = kind
	p := body[bodyFixed:]
	switch r.Type {
	case TypeSet:
		binary.LittleEndian.PutUint32(p[0:], r.Flags)
		binary.LittleEndian.PutUint64(p[4:], uint64(r.Exptime))
		binary.LittleEndian.PutUint64(p[12:], r.CAS)
		binary.LittleEndian.PutUint16(p[20:], uint16(len(r.Key)))
		binary.LittleEndian.PutUint32(p[22:], uint32(len(r.Value)))
		copy(p[26+copy(p[26:], r.Key):], r.Value)
	case TypeDelete:
		binary.LittleEndian.PutUint16(p[0:], uint16(len(r.Key)))
		copy(p[2:], r.Key)
	case TypeTouch:
		binary.LittleEndian.PutUint64(p[0:], uint64(r.Exptime))
		binary.LittleEndian.PutUint16(p[8:], uint16(len(r.Key)))
		copy(p[10:], r.Key)
	case TypeFlushAll:
		binary.LittleEndian.PutUint64(p[0:], uint64(r.At))
	}
	if r.groupEnd {
		binary.LittleEndian.PutUint64(body[n-groupTrailer:], r.groupFirst)
	}
	sealFrame(b[:frameHeader+n])
	return dst
}

// sealFrame computes and stores the CRC of a complete frame.
func sealFrame(f []byte) {
	c := crc32.Update(0, castagnoli, f[0:4])
	c = crc32.Update(c, castagnoli, f[frameHeader:])
	binary.LittleEndian.PutUint32(f[4:], c)
}

// markGroupEnd turns the last frame in buf, which starts at off, into a
// group-end frame for a group whose first sequence is first.
func markGroupEnd(buf []byte, off int, first uint64) []byte {
	buf = grow(buf, groupTrailer)
	f := buf[off:]
	binary.LittleEndian.PutUint64(f[len(f)-groupTrailer:], first)
	binary.LittleEndian.PutUint32(f, binary.LittleEndian.Uint32(f)+groupTrailer)
	f[frameHeader+8] |= groupEndFlag
	sealFrame(f)
	return buf
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// DecodeRecord decodes the frame at the start of b into r and returns the
// frame's length. Key and Value alias b. It never panics and never
// allocates; it returns ErrShort when b ends inside the frame and
// ErrCorrupt (wrapped with the reason) when the frame is damaged.
func DecodeRecord(b []byte, r *Record) (int, error) {
	if len(b) < frameHeader {
		return 0, ErrShort
	}
	n := binary.LittleEndian.Uint32(b[0:])
	if n < bodyFixed || n > maxBody {
		return 0, errBadLength
	}
	if uint64(len(b)) < frameHeader+uint64(n) {
		return 0, ErrShort
	}
	f := b[:frameHeader+int(n)]
	c := crc32.Update(0, castagnoli, f[0:4])
	c = crc32.Update(c, castagnoli, f[frameHeader:])
	if c != binary.LittleEndian.Uint32(f[4:]) {
		return 0, errBadCRC
	}
	body := f[frameHeader:]
	*r = Record{Seq: binary.LittleEndian.Uint64(body[0:])}
	r.Type = Type(body[8] &^ kindFlags)
	if body[8]&delayedFlag != 0 {
		if r.Type != TypeFlushAll {
			return 0, errDelayed
		}
		r.Delayed = true
	}
	p := body[bodyFixed:]
	if body[8]&groupEndFlag != 0 {
		if len(p) < groupTrailer {
			return 0, errTrailer
		}
		r.groupEnd = true
		r.groupFirst = binary.LittleEndian.Uint64(p[len(p)-groupTrailer:])
		p = p[:len(p)-groupTrailer]
	}
	switch r.Type {
	case TypeSet:
		if len(p) < setFixed-bodyFixed {
			return 0, errShortSet
		}
		r.Flags = binary.LittleEndian.Uint32(p[0:])
		r.Exptime = int64(binary.LittleEndian.Uint64(p[4:]))
		r.CAS = binary.LittleEndian.Uint64(p[12:])
		kl := int(binary.LittleEndian.Uint16(p[20:]))
		vl := uint64(binary.LittleEndian.Uint32(p[22:]))
		if uint64(len(p)) != 26+uint64(kl)+vl {
			return 0, errSetLen
		}
		r.Key = p[26 : 26+kl]
		r.Value = p[26+kl:]
	case TypeDelete:
		if len(p) < 2 || len(p) != 2+int(binary.LittleEndian.Uint16(p)) {
			return 0, errDeleteLen
		}
		r.Key = p[2:]
	case TypeTouch:
		if len(p) < 10 || len(p) != 10+int(binary.LittleEndian.Uint16(p[8:])) {
			return 0, errTouchLen
		}
		r.Exptime = int64(binary.LittleEndian.Uint64(p[0:]))
		r.Key = p[10:]
	case TypeFlushAll:
		if len(p) != 8 {
			return 0, errFlushLen
		}
		r.At = int64(binary.LittleEndian.Uint64(p[0:]))
	default:
		return 0, errBadType
	}
	return len(f), nil
}

// corruptError is a reason for ErrCorrupt.
type corruptError string

func (e corruptError) Error() string { return "journal: corrupt record: " + string(e) }
func (e corruptError) Unwrap() error { return ErrCorrupt }

// The reasons DecodeRecord gives, as values so that returning one does not
// allocate.
var (
	errBadLength error = corruptError("length out of range")
	errBadCRC    error = corruptError("checksum mismatch")
	errShortSet  error = corruptError("short set")
	errSetLen    error = corruptError("set lengths disagree")
	errDeleteLen error = corruptError("delete lengths disagree")
	errTouchLen  error = corruptError("touch lengths disagree")
	errFlushLen  error = corruptError("flush_all length")
	errBadType   error = corruptError("unknown type")
	errTrailer   error = corruptError("short group trailer")
	errDelayed   error = corruptError("delayed flag on a record that is not a flush_all")
)
