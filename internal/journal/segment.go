package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Segment header layout (little-endian):
//
//	0  magic "PTRLJRNL"
//	8  version uint16 (2; 1 is still read)
//	10 header size uint16 (24)
//	12 first sequence uint64
//	20 CRC32-C of bytes 0..20
//
// Version 2 added the delayed flag of flush_all records (record.go). The
// frames are otherwise the same, so version 1 segments are read as they
// are; Open never appends to one (recover.go), so a segment's version says
// whether its flush records can carry the flag, and a build that reads only
// version 1 refuses the newer segments by their header.
const (
	magic         = "PTRLJRNL"
	formatVersion = 2
	oldestVersion = 1 // the oldest format version still read
	headerSize    = 24
	segSuffix     = ".journal"
	segNameDigits = 20
)

// segName is the file name of the segment whose first record is seq.
func segName(seq uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, seq, segSuffix)
}

// parseSegName returns the first sequence named by a segment file name.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil && seq > 0
}

// listSegments returns the first sequences of the segments in dir, sorted.
func listSegments(fs FS, dir string) ([]uint64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var seqs []uint64
	for _, n := range names {
		if s, ok := parseSegName(n); ok {
			seqs = append(seqs, s)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

func encodeHeader(first uint64) []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.LittleEndian.PutUint16(h[8:], formatVersion)
	binary.LittleEndian.PutUint16(h[10:], headerSize)
	binary.LittleEndian.PutUint64(h[12:], first)
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], castagnoli))
	return h
}

var errBadHeader = errors.New("journal: bad segment header")

// headerVersion is the format version a segment header names; h must hold
// a whole header.
func headerVersion(h []byte) uint16 { return binary.LittleEndian.Uint16(h[8:]) }

// checkHeader verifies a segment header and that it names first.
func checkHeader(h []byte, first uint64) error {
	switch {
	case len(h) < headerSize:
		return fmt.Errorf("%w: %d bytes", errBadHeader, len(h))
	case string(h[:8]) != magic:
		return fmt.Errorf("%w: not a petrel journal (magic %q)", errBadHeader, h[:8])
	case crc32.Checksum(h[:20], castagnoli) != binary.LittleEndian.Uint32(h[20:]):
		return fmt.Errorf("%w: checksum mismatch", errBadHeader)
	case headerVersion(h) < oldestVersion || headerVersion(h) > formatVersion:
		return fmt.Errorf("%w: format version %d, this build reads %d to %d", errBadHeader,
			headerVersion(h), oldestVersion, formatVersion)
	case binary.LittleEndian.Uint16(h[10:]) != headerSize:
		return fmt.Errorf("%w: header size %d", errBadHeader, binary.LittleEndian.Uint16(h[10:]))
	case binary.LittleEndian.Uint64(h[12:]) != first:
		return fmt.Errorf("%w: first sequence %d, file name says %d", errBadHeader,
			binary.LittleEndian.Uint64(h[12:]), first)
	}
	return nil
}

// readChunk is how much a scanner reads at once: big sequential reads make
// recovery and catch-up run at disk speed, with no syscall per record.
const (
	readChunk = 1 << 20
	minChunk  = 4 << 10
)

// scanner decodes records from a file sequentially through one large
// buffer, never reading at or beyond limit.
type scanner struct {
	f     File
	buf   []byte
	r, w  int   // buf[r:w] is read but not yet decoded
	off   int64 // file offset of buf[w]
	limit int64
}

// newScanner reads f from off, reusing buf when it has room. The buffer
// starts small and grows to readChunk only for files that need it.
func newScanner(f File, off, limit int64, buf []byte) *scanner {
	if cap(buf) < minChunk {
		buf = make([]byte, minChunk)
	}
	return &scanner{f: f, buf: buf[:cap(buf)], off: off, limit: limit}
}

// pos is the file offset of the next undecoded byte.
func (s *scanner) pos() int64 { return s.off - int64(s.w-s.r) }

// next decodes the record at pos into rec and returns its offset. At the
// limit it returns io.EOF; when the bytes before the limit end inside a
// frame, ErrShort; on a damaged frame, an error wrapping ErrCorrupt. After
// an error pos stays at the offending frame.
func (s *scanner) next(rec *Record) (int64, error) {
	for {
		n, err := DecodeRecord(s.buf[s.r:s.w], rec)
		if err == nil {
			at := s.pos()
			s.r += n
			return at, nil
		}
		if !errors.Is(err, ErrShort) {
			return s.pos(), err
		}
		need := frameHeader
		if s.w-s.r >= 4 {
			need += int(binary.LittleEndian.Uint32(s.buf[s.r:]))
		}
		got, err := s.fill(need)
		if err != nil {
			return s.pos(), err
		}
		if !got {
			if s.r == s.w {
				return s.pos(), io.EOF
			}
			return s.pos(), ErrShort
		}
	}
}

// fill reads more bytes so that buf[r:] can hold need bytes, and reports
// whether it read anything.
func (s *scanner) fill(need int) (bool, error) {
	if s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	room := s.limit - s.off
	if room <= 0 {
		return false, nil
	}
	if len(s.buf) < readChunk && room > int64(len(s.buf)-s.w) {
		n := int(min(int64(readChunk), int64(s.w)+room))
		if n > len(s.buf) {
			nb := make([]byte, n)
			copy(nb, s.buf[:s.w])
			s.buf = nb
		}
	}
	if need > len(s.buf) {
		// Grow for a large record, but never past what the file can hold:
		// a damaged length must not make us allocate a gigabyte.
		if int64(need-s.w) > room {
			need = s.w + int(room)
		}
		if need > len(s.buf) {
			nb := make([]byte, need)
			copy(nb, s.buf[:s.w])
			s.buf = nb
		}
	}
	end := len(s.buf)
	if int64(end-s.w) > room {
		end = s.w + int(room)
	}
	if end == s.w {
		return false, nil
	}
	n, err := s.f.ReadAt(s.buf[s.w:end], s.off)
	s.w += n
	s.off += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return n > 0, fmt.Errorf("journal: read: %w", err)
	}
	return n > 0, nil
}
