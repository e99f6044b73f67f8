package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"petrel/internal/journal"
)

// DirJournal follows the journal files of a data directory that another
// process (the server) writes: it is how `petrel storer` runs off the
// serving process. It only reads; it never repairs a file, since the
// writer owns them. A record counts as acknowledged here once it is
// complete on disk with a good CRC. (The writer may not have fsynced it
// yet; if the machine then loses power, the writer's recovery may cut it,
// and the storer must then be restored from a snapshot. A storer in the
// server process has no such window: it reads only acknowledged records.)
//
// TruncateBelow cannot delete the writer's files under it; it writes the
// storer.applied mark (WriteAppliedMark) for the writer to truncate below.
type DirJournal struct {
	dataDir string
	dir     string
	poll    time.Duration

	mu      sync.Mutex
	tail    *cursor // finds the newest complete record
	durable uint64
	closed  bool
	looked  time.Time // when the tail last looked at the files
	// ends are where the records of the segments the tail has finished
	// end: the files may go on in zeros (journal/zero.go), so their sizes
	// would overstate BytesAfter by up to a megabyte each.
	ends []segEnd
}

type segEnd struct {
	first uint64
	end   int64
}

var _ journal.Journal = (*DirJournal)(nil)

// OpenDirJournal follows dataDir's journal, polling for new records every
// poll (default 50 ms).
func OpenDirJournal(dataDir string, poll time.Duration) (*DirJournal, error) {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	d := &DirJournal{dataDir: dataDir, dir: JournalDir(dataDir), poll: poll}
	segs, err := listSegmentFiles(d.dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("storage: no journal segments in %s", d.dir)
	}
	d.tail = &cursor{dir: d.dir, seq: segs[0].first, tolerateTail: true}
	d.tail.finished = func(first uint64, end int64) { d.ends = append(d.ends, segEnd{first, end}) } // under d.mu
	if err := d.refresh(); err != nil {
		return nil, err
	}
	return d, nil
}

// refresh advances the tail cursor over complete records.
func (d *DirJournal) refresh() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refreshLocked()
}

func (d *DirJournal) refreshLocked() error {
	if d.closed {
		return nil // reading would reopen the file Close closed
	}
	d.looked = time.Now()
	var r journal.Record
	for {
		err := d.tail.read(&r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		d.durable = r.Seq
	}
}

// Refresh looks for new records, unless the files were looked at less
// than a poll interval ago, so that it may be called often. DurableSeq and
// BytesAfter, which do no I/O, otherwise move only when WaitDurable polls,
// and a storer retrying a batch while its backend is down never waits for
// records: its backlog (Storer.Lag, which calls this) would stand at its
// size when the outage began while the writer goes on appending. An error
// is left for the reader to meet and report.
func (d *DirJournal) Refresh() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.looked) >= d.poll {
		_ = d.refreshLocked()
	}
}

// Append implements journal.Journal; a follower cannot append.
func (d *DirJournal) Append(*journal.Record) (uint64, error) {
	return 0, errors.New("storage: a followed journal is read-only")
}

// DurableSeq implements journal.Journal: the newest complete record seen.
func (d *DirJournal) DurableSeq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.durable
}

// WaitDurable implements journal.Journal by polling the files.
func (d *DirJournal) WaitDurable(seq uint64) error {
	for {
		if err := d.refresh(); err != nil {
			return err
		}
		d.mu.Lock()
		done, closed := d.durable >= seq, d.closed
		d.mu.Unlock()
		if done {
			return nil
		}
		if closed {
			return journal.ErrClosed
		}
		time.Sleep(d.poll)
	}
}

// ReadFrom implements journal.Journal.
func (d *DirJournal) ReadFrom(seq uint64) (journal.Reader, error) {
	segs, err := listSegmentFiles(d.dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 || seq < segs[0].first {
		first := uint64(0)
		if len(segs) > 0 {
			first = segs[0].first
		}
		return nil, fmt.Errorf("%w: %d is below the oldest record kept, %d", journal.ErrTruncated, seq, first)
	}
	return &dirReader{d: d, c: &cursor{dir: d.dir, seq: seq, tolerateTail: true}}, nil
}

// TruncateBelow implements journal.Journal by telling the writer.
func (d *DirJournal) TruncateBelow(seq uint64) error {
	if seq == 0 {
		return nil
	}
	d.mu.Lock()
	// A segment whose successor starts at or below seq is all below it: no
	// reader at seq or later is in it, and BytesAfter needs it no more.
	for len(d.ends) > 0 {
		next := d.tail.first
		if len(d.ends) > 1 {
			next = d.ends[1].first
		}
		if next == d.ends[0].first || next > seq {
			break
		}
		d.ends = d.ends[1:]
	}
	d.mu.Unlock()
	return WriteAppliedMark(d.dataDir, seq-1)
}

// BytesAfter implements journal.BytesAfterer, up to the newest complete
// record seen (DurableSeq), with no I/O.
func (d *DirJournal) BytesAfter(p journal.Position) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	add := func(first uint64, end int64) {
		switch {
		case first == p.Segment:
			n += max(end-max(p.Offset, segHeaderSize), 0)
		case first > p.Segment:
			n += end - segHeaderSize
		}
	}
	for _, e := range d.ends {
		add(e.first, e.end)
	}
	// A tail that finished a segment but could not open the next one yet
	// still stands at the end of the finished one, which ends counts.
	if k := len(d.ends); d.tail.first != 0 && (k == 0 || d.ends[k-1].first != d.tail.first) {
		add(d.tail.first, d.tail.off)
	}
	return n
}

// Err implements journal.Journal.
func (d *DirJournal) Err() error { return nil }

// DiskBytes is the size of the segment files.
func (d *DirJournal) DiskBytes() int64 {
	segs, err := listSegmentFiles(d.dir)
	if err != nil {
		return -1
	}
	var n int64
	for _, s := range segs {
		if fi, err := os.Stat(s.path); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Close implements journal.Journal.
func (d *DirJournal) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.tail.close()
	return nil
}

type dirReader struct {
	d *DirJournal
	c *cursor
}

func (r *dirReader) Next(rec *journal.Record) error {
	if r.c.seq > r.d.DurableSeq() {
		return io.EOF
	}
	return r.c.read(rec)
}

func (r *dirReader) Close() error { r.c.close(); return nil }

// Position implements journal.Positioner.
func (r *dirReader) Position() (journal.Position, error) { return r.c.position() }

var (
	_ journal.Positioner   = (*dirReader)(nil)
	_ journal.BytesAfterer = (*DirJournal)(nil)
)

// segFile is one journal segment file.
type segFile struct {
	first uint64
	path  string
}

// The segment file format is internal/journal's (docs/durability.md):
// "<20-digit first sequence>.journal", a 24-byte header (magic, version,
// header size, first sequence, CRC32-C), then CRC-framed records.
const (
	segSuffix     = ".journal"
	segHeaderSize = 24
	segMagic      = "PTRLJRNL"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func listSegmentFiles(dir string) ([]segFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list journal %s: %w", dir, err)
	}
	var segs []segFile
	for _, e := range ents {
		digits, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || len(digits) != 20 {
			continue
		}
		first, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || first == 0 {
			continue
		}
		segs = append(segs, segFile{first, filepath.Join(dir, e.Name())})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

func segmentHeader(first uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint16(h[8:], 1)
	binary.LittleEndian.PutUint16(h[10:], segHeaderSize)
	binary.LittleEndian.PutUint64(h[12:], first)
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], castagnoli))
	return h
}

// checkSegmentHeader accepts format versions 1 and 2: version 2 only adds
// the delayed flag of flush_all records, which journal.DecodeRecord reads.
func checkSegmentHeader(h []byte, first uint64) error {
	want := segmentHeader(first)
	if len(h) < segHeaderSize || string(h[:8]) != string(want[:8]) || string(h[10:20]) != string(want[10:20]) ||
		(h[8] != 1 && h[8] != 2) || h[9] != 0 ||
		binary.LittleEndian.Uint32(h[20:]) != crc32.Checksum(h[:20], castagnoli) {
		return fmt.Errorf("bad segment header (want magic %q, version 1 or 2, first sequence %d)", segMagic, first)
	}
	return nil
}

// cursor reads records in sequence order across segment files. With
// tolerateTail, a short or damaged frame at the end of the newest segment
// is taken as not written yet (io.EOF), since a writer may be mid-write.
type cursor struct {
	dir          string
	seq          uint64 // the sequence to return next
	tolerateTail bool

	f     *os.File
	first uint64 // of the open segment, or of the last one closed
	path  string
	off   int64 // file offset of buf[r]
	buf   []byte
	r, w  int
	// at: the open segment's records below seq have been skipped, so
	// off is where record seq starts (position).
	at bool
	// finished, when set, is told where the records of each segment the
	// cursor leaves for the next one end.
	finished func(first uint64, end int64)
}

// read decodes the next record into rec.
func (c *cursor) read(rec *journal.Record) error {
	reread := false
	for {
		if c.f == nil {
			if err := c.open(); err != nil {
				return err
			}
		}
		n, err := journal.DecodeRecord(c.buf[c.r:c.w], rec)
		if err == nil {
			c.r += n
			c.off += int64(n)
			if rec.Seq < c.seq {
				continue // skipping to the start position
			}
			if rec.Seq != c.seq {
				return fmt.Errorf("storage: journal %s offset %d: sequence %d where %d was expected: %w",
					c.path, c.off-int64(n), rec.Seq, c.seq, journal.ErrCorrupt)
			}
			c.seq++
			c.at = true
			return nil
		}
		if errors.Is(err, journal.ErrShort) {
			got, rerr := c.fill()
			if rerr != nil {
				return rerr
			}
			if got {
				continue
			}
		}
		// No complete record here. A newer segment means this one is
		// finished, so leftovers are damage, unless they are the writer's
		// zero-filled tail; in the newest one they may be a write in
		// progress, so they are read again next time.
		if !reread && c.r != c.w {
			// The buffer may hold bytes read before the writer wrote
			// them (its zero-filled tail): read them again once.
			reread, c.w = true, c.r
			continue
		}
		next, later, lerr := c.laterSegment()
		if lerr != nil {
			return lerr
		}
		if later && !reread {
			// The segment may have been finished since it was read.
			reread = true
			continue
		}
		end := c.r == c.w
		if !end && (later || !c.tolerateTail) {
			if end, lerr = journal.ZeroFrom(c.f, c.off); lerr != nil {
				return fmt.Errorf("storage: %s: %w", c.path, lerr)
			}
		}
		c.w = c.r // stale: the writer may be writing these bytes now
		switch {
		case later && end && next == c.seq:
			if c.finished != nil {
				c.finished(c.first, c.off)
			}
			c.close()
			continue
		case later && end:
			return fmt.Errorf("storage: journal %s ends at sequence %d but the next segment starts at %d: %w",
				c.path, c.seq-1, next, journal.ErrCorrupt)
		case later:
			return fmt.Errorf("storage: journal %s offset %d: %v: %w", c.path, c.off, err, journal.ErrCorrupt)
		case end || c.tolerateTail:
			return io.EOF
		}
		return fmt.Errorf("storage: journal %s offset %d: %w", c.path, c.off, err)
	}
}

// fill reads more of the open file and reports whether it got anything.
func (c *cursor) fill() (bool, error) {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	need := 1 << 20
	if c.w >= 8 {
		need = max(need, 8+int(binary.LittleEndian.Uint32(c.buf)))
	}
	if len(c.buf) < need {
		// A damaged length must not allocate a gigabyte: never more than
		// the file holds from buf[0] on.
		if fi, err := c.f.Stat(); err == nil && int64(need) > fi.Size()-c.off {
			need = int(max(fi.Size()-c.off, int64(c.w)+1))
		}
		nb := make([]byte, max(need, len(c.buf)))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
	n, err := c.f.ReadAt(c.buf[c.w:], c.off+int64(c.w))
	c.w += n
	if err != nil && !errors.Is(err, io.EOF) {
		return n > 0, fmt.Errorf("storage: read %s: %w", c.path, err)
	}
	return n > 0, nil
}

// open opens the segment holding c.next.
func (c *cursor) open() error {
	segs, err := listSegmentFiles(c.dir)
	if err != nil {
		return err
	}
	i := sort.Search(len(segs), func(i int) bool { return segs[i].first > c.seq }) - 1
	if i < 0 {
		return fmt.Errorf("%w: %d is below the oldest record kept", journal.ErrTruncated, c.seq)
	}
	f, err := os.Open(segs[i].path)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	h := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		f.Close()
		if errors.Is(err, io.EOF) && c.tolerateTail && i == len(segs)-1 {
			return io.EOF // created, header not written yet
		}
		return fmt.Errorf("storage: read %s: %w", segs[i].path, err)
	}
	if err := checkSegmentHeader(h, segs[i].first); err != nil {
		f.Close()
		return fmt.Errorf("storage: journal %s: %w", segs[i].path, err)
	}
	c.f, c.first, c.path, c.off, c.r, c.w, c.at = f, segs[i].first, segs[i].path, segHeaderSize, 0, 0, false
	return nil
}

// position returns where record seq starts, or where the records of its
// segment end so far. A cursor that has not read yet opens its segment and
// skips what read would skip, keeping the rest buffered for read.
func (c *cursor) position() (journal.Position, error) {
	if c.f == nil {
		if c.first != 0 {
			return journal.Position{Segment: c.first, Offset: c.off}, nil // finished; the next not open yet
		}
		if err := c.open(); err != nil {
			return journal.Position{}, err
		}
	}
	var rec journal.Record
	for !c.at {
		n, err := journal.DecodeRecord(c.buf[c.r:c.w], &rec)
		switch {
		case err == nil && rec.Seq < c.seq:
			c.r += n
			c.off += int64(n)
			continue
		case err == nil:
			c.at = true
			continue
		case errors.Is(err, journal.ErrShort):
			got, err := c.fill()
			if err != nil {
				return journal.Position{}, err
			}
			if got {
				continue
			}
		}
		// The end of what is written, or damage, which read will report.
		// Not at: records below seq may yet be written here.
		break
	}
	return journal.Position{Segment: c.first, Offset: c.off}, nil
}

// laterSegment returns the first sequence of the segment after the open
// one, if there is one.
func (c *cursor) laterSegment() (uint64, bool, error) {
	segs, err := listSegmentFiles(c.dir)
	if err != nil {
		return 0, false, err
	}
	for _, s := range segs {
		if s.first > c.first {
			return s.first, true, nil
		}
	}
	return 0, false, nil
}

func (c *cursor) close() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}
