package journal

import (
	"errors"
	"fmt"
	"io"
	"runtime"
)

// Recovery reports what Open found and what it changed.
type Recovery struct {
	Segments int    // segment files kept
	Records  uint64 // valid records scanned
	FirstSeq uint64 // oldest record kept (the first segment's first sequence)
	LastSeq  uint64 // newest record kept; 0 when there is none
	// Truncated lists the cuts made: a torn tail, or (with Repair) the
	// corrupt point and everything after it.
	Truncated []Truncation
	// Dropped lists whole segment files removed (with Repair, or a last
	// segment whose header was never completely written).
	Dropped  []string
	Warnings []string
	// Flushes are the flush_all records kept, in order: the scan sees
	// every record anyway, so warm-up needs no extra pass to find them.
	Flushes []FlushMark
}

// FlushMark is one flush_all record: its sequence, the time it takes
// effect, and whether it is a delayed one (Record.Delayed; always false
// in a segment of format version 1, where the two cannot be told apart).
type FlushMark struct {
	Seq     uint64
	At      int64
	Delayed bool
	// Marked says the segment marks delayed flushes (format version 2 on):
	// a flush not Delayed is then an immediate one even if At is after
	// the reader's clock (a clock stepped back since), while in version 1
	// only At can tell.
	Marked bool
}

// Truncation is one cut made by recovery.
type Truncation struct {
	File   string
	Offset int64 // the file now ends here
	Bytes  int64 // bytes removed
	Reason string
}

// Open opens the journal in opts.Dir, creating it when empty, and recovers
// it: each segment is read in order with large sequential reads and every
// record's CRC and sequence are checked. A torn or corrupt tail of the last
// segment (one unfinished group, possibly with holes) is truncated, with a
// warning. Corruption anywhere else, or a gap in the sequence, makes Open
// fail with an error naming the file and offset, unless opts.Repair is set:
// then the journal is cut there and what follows is dropped and reported.
func Open(opts Options) (*Local, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	j := &Local{opts: opts, fs: opts.FS, wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.durCond.L = &j.mu
	j.spaceCond.L = &j.mu
	if err := j.fs.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", opts.Dir, err)
	}
	if err := j.recover(); err != nil {
		return nil, err
	}
	gomaxprocs.Store(int32(runtime.GOMAXPROCS(0)))
	go j.run()
	return j, nil
}

// scanResult is what one segment holds.
type scanResult struct {
	size    int64
	end     int64  // end of the last good record
	lastOff int64  // offset of the last good record (headerSize if none)
	next    uint64 // the sequence after the last good record
	records uint64
	badOff  int64 // -1 when the segment is sound
	cause   error
	torn    bool // the damage looks like an unfinished final group
	gap     bool // the segment does not start where the previous one ended
	version uint16
}

func (j *Local) recover() error {
	seqs, err := listSegments(j.fs, j.opts.Dir)
	if err != nil {
		return err
	}
	rep := &j.recovery
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Warnings = append(rep.Warnings, msg)
		j.opts.Logf("%s", msg)
	}
	var buf []byte // reused from segment to segment
	var segs []segment
	var fileEnd int64 // of the last segment kept
	next := uint64(1)
	lastOff := int64(headerSize)
	var lastVersion uint16 // of the last segment kept
	for i := 0; i < len(seqs); i++ {
		first, name := seqs[i], j.path(seqs[i])
		last := i == len(seqs)-1
		var res scanResult
		if i > 0 && first != next {
			res = scanResult{gap: true, cause: fmt.Errorf("segment starts at sequence %d, expected %d", first, next)}
		} else if res, err = j.scanSegment(name, first, last, &buf); err != nil {
			return err
		}
		if res.badOff < 0 {
			segs = append(segs, segment{first, res.end})
			fileEnd = res.size
			next, lastOff, rep.Records = res.next, res.lastOff, rep.Records+res.records
			lastVersion = res.version
			continue
		}
		if res.badOff == 0 && !res.gap && last && res.size <= headerSize {
			// Created but its header never reached the disk: it holds
			// nothing, so start it again.
			if err := j.fs.Remove(name); err != nil {
				return fmt.Errorf("journal: remove %s: %w", name, err)
			}
			rep.Dropped = append(rep.Dropped, name)
			warn("journal: %s: incomplete header (%d bytes, %v); removed", name, res.size, res.cause)
			next = first
			break
		}
		if !(last && res.torn) && !j.opts.Repair {
			return fmt.Errorf("journal: corrupt %s at offset %d: %w; records follow it, so it is not a torn tail: "+
				"refusing to open (Options.Repair truncates here and drops what follows)", name, res.badOff, res.cause)
		}
		// Cut here: a torn tail, or a repair.
		if res.badOff == 0 {
			if err := j.fs.Remove(name); err != nil {
				return fmt.Errorf("journal: remove %s: %w", name, err)
			}
			rep.Dropped = append(rep.Dropped, name)
			warn("journal: %s: %v; removed", name, res.cause)
			if len(segs) == 0 {
				next = first // never go back below sequences once used
			}
		} else {
			if err := truncateFile(j.fs, name, res.badOff); err != nil {
				return err
			}
			rep.Truncated = append(rep.Truncated, Truncation{File: name, Offset: res.badOff,
				Bytes: res.size - res.badOff, Reason: res.cause.Error()})
			kind := "torn tail"
			if !(last && res.torn) {
				kind = "repair"
			}
			warn("journal: %s: %s at offset %d (%v); truncated %d bytes", name, kind, res.badOff, res.cause, res.size-res.badOff)
			segs = append(segs, segment{first, res.badOff})
			fileEnd = res.badOff
			next, lastOff, rep.Records = res.next, res.lastOff, rep.Records+res.records
			lastVersion = res.version
		}
		for _, s := range seqs[i+1:] {
			n := j.path(s)
			if err := j.fs.Remove(n); err != nil {
				return fmt.Errorf("journal: remove %s: %w", n, err)
			}
			rep.Dropped = append(rep.Dropped, n)
			warn("journal: repair: dropped %s", n)
		}
		if err := j.fs.SyncDir(j.opts.Dir); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		break
	}

	if n := len(segs); n > 0 && lastVersion < formatVersion {
		// Records of this format go to a segment of this format, so that
		// a segment's version says which flags its records may carry.
		old := j.path(segs[n-1].first)
		if segs[n-1].first == next {
			// It holds no record: start it again in this format.
			if err := j.fs.Remove(old); err != nil {
				return fmt.Errorf("journal: remove %s: %w", old, err)
			}
			segs = segs[:n-1]
		}
		j.opts.Logf("journal: %s has format version %d; appending to a new segment of version %d", old, lastVersion, formatVersion)
		f, err := j.createSegment(next)
		if err != nil {
			return err
		}
		j.active = f
		segs = append(segs, segment{next, headerSize})
		fileEnd, lastOff = headerSize, headerSize
	} else if len(segs) == 0 {
		f, err := j.createSegment(next)
		if err != nil {
			return err
		}
		j.active = f
		segs = append(segs, segment{next, headerSize})
		fileEnd = headerSize
	} else {
		a := segs[len(segs)-1]
		f, err := j.fs.OpenRW(j.path(a.first))
		if err != nil {
			return fmt.Errorf("journal: open %s: %w", j.path(a.first), err)
		}
		j.active = f
	}
	j.segs = segs
	j.writeOff = segs[len(segs)-1].size
	j.zeroEnd = max(fileEnd, j.writeOff)
	j.groupStart = lastOff
	j.nextSeq = next
	j.durable.Store(next - 1)
	j.synced = next - 1
	rep.Segments = len(segs)
	rep.FirstSeq = segs[0].first
	rep.LastSeq = next - 1
	return nil
}

// scanSegment reads one segment and finds where its good records end.
// buf is a read buffer carried from segment to segment.
func (j *Local) scanSegment(name string, first uint64, last bool, buf *[]byte) (scanResult, error) {
	res := scanResult{badOff: -1, end: headerSize, lastOff: headerSize, next: first}
	f, err := j.fs.Open(name)
	if err != nil {
		return res, fmt.Errorf("journal: open %s: %w", name, err)
	}
	defer f.Close()
	if res.size, err = f.Size(); err != nil {
		return res, fmt.Errorf("journal: stat %s: %w", name, err)
	}
	h := make([]byte, headerSize)
	n, err := f.ReadAt(h, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("journal: read %s: %w", name, err)
	}
	if err := checkHeader(h[:n], first); err != nil {
		res.badOff, res.cause = 0, err
		return res, nil
	}
	res.version = headerVersion(h)
	sc := newScanner(f, headerSize, res.size, *buf)
	defer func() { *buf = sc.buf }()
	var rec Record
	for {
		at, err := sc.next(&rec)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err == nil && rec.Seq != res.next {
			err = fmt.Errorf("%w: sequence %d where %d was expected", ErrCorrupt, rec.Seq, res.next)
		}
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
				return res, fmt.Errorf("journal: %s: %w", name, err)
			}
			if zero, zerr := ZeroFrom(f, at); zerr != nil {
				return res, fmt.Errorf("journal: read %s: %w", name, zerr)
			} else if zero {
				return res, nil // the zero-filled tail (zero.go): a clean end
			}
			res.badOff, res.cause = at, err
			if last {
				if res.torn, err = tornTail(f, at, res.size, res.next); err != nil {
					return res, fmt.Errorf("journal: read %s: %w", name, err)
				}
			}
			return res, nil
		}
		res.lastOff = at
		res.end = sc.pos()
		res.next++
		res.records++
		if rec.Type == TypeFlushAll {
			j.recovery.Flushes = append(j.recovery.Flushes, FlushMark{Seq: rec.Seq, At: rec.At, Delayed: rec.Delayed, Marked: res.version >= 2})
		}
	}
}

// tornTail reports whether the damage at off, where sequence next was
// expected, can be an unfinished final group: one write that reached the
// disk in part, perhaps with holes, and was never acknowledged. It can be
// if no valid record after off ends a synced group that started after
// next (a complete group after the damage), and no valid record follows a
// group end. This reads the rest of the file into memory; it runs only
// when the last segment is damaged.
func tornTail(f File, off, size int64, next uint64) (bool, error) {
	rest := make([]byte, size-off)
	if n, err := f.ReadAt(rest, off); n < len(rest) {
		return false, err
	}
	var rec Record
	sawEnd := false
	for p := 1; p < len(rest); {
		n, err := DecodeRecord(rest[p:], &rec)
		if err != nil || rec.Seq < next {
			p++
			continue
		}
		if sawEnd || (rec.groupEnd && rec.groupFirst > next) {
			return false, nil
		}
		sawEnd = rec.groupEnd
		p += n
	}
	return true, nil
}

// truncateFile cuts name to size, durably.
func truncateFile(fs FS, name string, size int64) error {
	f, err := fs.OpenRW(name)
	if err != nil {
		return fmt.Errorf("journal: open %s: %w", name, err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: truncate %s at %d: %w", name, size, err)
	}
	return nil
}
