package journal

import (
	"errors"
	"fmt"
	"io"
)

// Positions measure the journal in bytes. A backend that falls behind
// leaves its backlog on disk, and --backlog-limit bounds that disk: the
// bound needs the bytes between the storer and the journal's end, which
// no count of records can give when record sizes vary (a backlog of a few
// records may be megabytes), nor the journal's size on disk, which keeps
// what was applied until it is truncated.

// Position is where a record starts: the segment (named by its first
// sequence) and the byte offset in it. The end of a segment and the start
// of the next one are the same place as far as BytesAfter is concerned.
// The zero Position is before every segment.
type Position struct {
	Segment uint64
	Offset  int64
}

// Positioner is a Reader that can tell where the record its next Next
// returns starts (or where its segment ends, once it has read all of it).
// It may have to open and scan the segment when the reader has not read
// yet, so it is not for a hot path; once reading, it costs nothing.
type Positioner interface {
	Position() (Position, error)
}

// BytesAfterer is a Journal that can measure the acknowledged record bytes
// from a Position to its durable end, without I/O. Segment headers do not
// count: a reader at the end of the journal has 0 bytes after it.
type BytesAfterer interface {
	BytesAfter(p Position) int64
}

var (
	_ Positioner   = (*fileReader)(nil)
	_ BytesAfterer = (*Local)(nil)
)

// BytesAfter implements BytesAfterer. A segment truncated away counts
// nothing: a position in it is before every segment that is left.
func (j *Local) BytesAfter(p Position) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var n int64
	for _, s := range j.segs {
		switch {
		case s.first == p.Segment:
			n += max(s.size-max(p.Offset, headerSize), 0)
		case s.first > p.Segment:
			n += s.size - headerSize
		}
	}
	return n
}

// Position implements Positioner.
func (r *fileReader) Position() (Position, error) {
	if r.j == nil {
		return Position{}, ErrClosed
	}
	if r.f == nil {
		if r.seg != 0 {
			// Next closed a finished segment and has not opened the next.
			return Position{r.seg, r.closedAt}, nil
		}
		if err := r.openSegment(); err != nil {
			return Position{}, err
		}
	}
	if r.at {
		return Position{r.seg, r.sc.pos()}, nil
	}
	if end, _, ok := r.j.segmentEnd(r.seg); ok {
		r.sc.limit = end
	}
	// Skip what Next would skip, and leave the scanner before the record
	// it returns next, so that reading goes on from here with no rescan.
	var rec Record
	for {
		at, err := r.sc.next(&rec)
		switch {
		case err == nil && rec.Seq < r.next:
			continue
		case err == nil:
			r.sc.r -= int(r.sc.pos() - at) // unread: the frame is still in the buffer
			r.at = true
			return Position{r.seg, at}, nil
		case errors.Is(err, io.EOF):
			// Not at: records below next may yet be appended here.
			return Position{r.seg, r.sc.pos()}, nil
		default:
			return Position{}, fmt.Errorf("journal: read %s at offset %d: %w", segName(r.seg), r.sc.pos(), err)
		}
	}
}
