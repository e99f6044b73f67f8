package journal

import (
	"errors"
	"fmt"
	"io"
)

// Zero-filled tails. An fdatasync after an append must also commit the
// file's new size and block allocation, a file-system journal commit that
// on ext4 almost doubles its cost (about 200 µs against 110 µs on this
// project's test machines). Overwriting blocks that are already allocated
// and written needs data only. So the writer keeps the active segment
// zero-filled about zeroChunk ahead of its records (zeroAhead): one group
// in every zeroChunk bytes pays for the allocation, the rest sync data
// only. fallocate is no substitute: it leaves unwritten extents, whose
// first write is again a metadata change. This is the reason PostgreSQL
// zero-fills its WAL segments before use.
//
// A segment therefore ends in zeros, and readers stop at the first frame
// that is all zeros up to the end of the file (ZeroFrom): a frame never
// starts with a zero length, so this is never a record.

const zeroChunk = 1 << 20

var zeros [zeroChunk]byte

// zeroAhead extends the zero-filled tail of the active segment when fewer
// than half a chunk of it is left, up to the segment size. It is best
// effort: if the write fails, records are appended as before, and the
// failure shows when they are.
func (j *Local) zeroAhead() {
	j.zeroEnd = max(j.zeroEnd, j.writeOff)
	if j.zeroEnd-j.writeOff >= zeroChunk/2 || j.zeroEnd >= j.opts.SegmentSize {
		return
	}
	to := min((j.writeOff+zeroChunk+4095)&^4095, j.opts.SegmentSize)
	for j.zeroEnd < to {
		n := min(to-j.zeroEnd, zeroChunk)
		w, err := j.active.WriteAt(zeros[:n], j.zeroEnd)
		j.zeroEnd += int64(w)
		if err != nil || int64(w) < n {
			return
		}
	}
}

// ZeroFrom reports whether r holds only zero bytes from off to its end:
// the zero-filled tail after a segment's last record. Recovery and the
// storer that follows the journal files from another process both use it.
func ZeroFrom(r io.ReaderAt, off int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.ReadAt(buf, off)
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("journal: read: %w", err)
		}
	}
}
