package journal

import (
	"errors"
	"fmt"
	"io"
)

// fileReader reads a Local journal through its own file handles. It never
// reads past the acknowledged end of the active segment, so it cannot see
// bytes that a failure and Resume would later rewrite.
type fileReader struct {
	j    *Local
	next uint64 // sequence Next returns next
	seg  uint64 // first sequence of the open segment; 0 when none is open
	f    File
	sc   *scanner
	buf  []byte
	// at: the open segment's records below next have been skipped, so
	// the scanner stands where record next starts (Position).
	at bool
	// closedAt is where the last closed segment ended, the position of
	// a reader that has not opened the next one yet.
	closedAt int64
}

// ReadFrom implements Journal.
func (j *Local) ReadFrom(seq uint64) (Reader, error) {
	j.mu.Lock()
	first := j.segs[0].first
	j.mu.Unlock()
	if seq == 0 {
		seq = first
	}
	if seq < first {
		return nil, fmt.Errorf("%w: %d is below the oldest record kept, %d", ErrTruncated, seq, first)
	}
	return &fileReader{j: j, next: seq}, nil
}

// Next implements Reader.
func (r *fileReader) Next(rec *Record) error {
	if r.j == nil {
		return ErrClosed
	}
	for {
		if r.next > r.j.DurableSeq() {
			return io.EOF
		}
		if r.f == nil {
			if err := r.openSegment(); err != nil {
				return err
			}
		}
		end, active, ok := r.j.segmentEnd(r.seg)
		if ok {
			r.sc.limit = end
		}
		_, err := r.sc.next(rec)
		switch {
		case err == nil:
			if rec.Seq < r.next {
				continue // skipping to the start position
			}
			if rec.Seq != r.next {
				return fmt.Errorf("journal: %s: sequence %d where %d was expected: %w",
					segName(r.seg), rec.Seq, r.next, ErrCorrupt)
			}
			r.next++
			r.at = true
			return nil
		case errors.Is(err, io.EOF) && !(ok && active):
			// This segment is finished; the next record is in the next one.
			r.closeSegment()
		case errors.Is(err, io.EOF):
			return io.EOF
		default:
			return fmt.Errorf("journal: read %s at offset %d: %w", segName(r.seg), r.sc.pos(), err)
		}
	}
}

func (r *fileReader) openSegment() error {
	first, err := r.j.segmentFor(r.next)
	if err != nil {
		return err
	}
	name := r.j.path(first)
	f, err := r.j.fs.Open(name)
	if err != nil {
		return fmt.Errorf("journal: open %s: %w", name, err)
	}
	h := make([]byte, headerSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		f.Close()
		return fmt.Errorf("journal: read %s: %w", name, err)
	}
	if err := checkHeader(h, first); err != nil {
		f.Close()
		return fmt.Errorf("journal: %s: %w", name, err)
	}
	r.f, r.seg, r.at = f, first, false
	r.sc = newScanner(f, headerSize, headerSize, r.buf)
	return nil
}

func (r *fileReader) closeSegment() {
	if r.f != nil {
		r.f.Close()
		r.closedAt = r.sc.pos()
		r.buf = r.sc.buf
		r.f, r.sc = nil, nil
	}
}

// Close implements Reader.
func (r *fileReader) Close() error {
	r.closeSegment()
	r.j = nil
	return nil
}
