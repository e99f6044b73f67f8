package analyze

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress writes a line to W about every two seconds on long runs:
// lines and bytes read, the rate, and the ETA when the input sizes are
// known.
type progress struct {
	W          io.Writer
	Total      int64 // bytes of input on disk (compressed size for .gz), 0 if unknown
	start      time.Time
	done       int64 // bytes of finished files
	lastLines  uint64
	lastReport time.Time
}

// ReadFiles analyses the named files in order ("-" is standard input; a
// name ending in .gz is decompressed), with progress lines to w if not nil.
func (a *Analyzer) ReadFiles(names []string, w io.Writer) error {
	p := &progress{W: w, start: time.Now()}
	for _, n := range names {
		if n == "-" {
			continue
		}
		if fi, err := os.Stat(n); err == nil {
			p.Total += fi.Size()
		}
	}
	p.lastReport = p.start
	for _, n := range names {
		if err := a.readFile(n, p); err != nil {
			return err
		}
	}
	if p.W != nil && time.Since(p.start) > 2*time.Second {
		p.report(a, 0, true)
	}
	return a.err
}

func (a *Analyzer) readFile(name string, p *progress) error {
	var f *os.File
	if name == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(name); err != nil {
			return err
		}
		defer f.Close()
	}
	cr := &countReader{r: f}
	var r io.Reader = cr
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(bufio.NewReaderSize(cr, 1<<16))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	err := a.read(r, name, func() { p.tick(a, cr.n) })
	p.done += cr.n
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Read analyses one log stream. name labels it in the report.
func (a *Analyzer) Read(r io.Reader, name string) error {
	if err := a.read(r, name, nil); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return a.err
}

func (a *Analyzer) read(r io.Reader, name string, tick func()) error {
	a.inputs = append(a.inputs, name)
	br := bufio.NewReaderSize(r, 1<<20)
	fs := v1Fields
	var rec Record
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer is no log line: skip it.
			a.lines++
			a.malformed++
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if len(line) > 0 {
			a.bytesIn += int64(len(line))
			a.line(line, &fs, &rec)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if tick != nil && n&(1<<16-1) == 0 {
			tick()
		}
	}
}

func (a *Analyzer) line(line []byte, fs *fieldSet, rec *Record) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return
	}
	a.lines++
	if line[0] == '#' {
		a.comments++
		nfs, isHeader, err := parseHeader(line)
		if err != nil && a.err == nil {
			a.err = err
		}
		if isHeader && err == nil {
			*fs = nfs
		}
		return
	}
	if err := fs.parse(line, rec); err != nil {
		a.malformed++
		return
	}
	a.Add(rec)
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (p *progress) tick(a *Analyzer, fileBytes int64) {
	if p.W == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.lastReport) < 2*time.Second {
		return
	}
	p.report(a, fileBytes, false)
}

func (p *progress) report(a *Analyzer, fileBytes int64, final bool) {
	now := time.Now()
	el := now.Sub(p.start).Seconds()
	rate := float64(a.lines-p.lastLines) / now.Sub(p.lastReport).Seconds()
	if final {
		rate = float64(a.lines) / el
	}
	done := p.done + fileBytes
	msg := fmt.Sprintf("analyze: %s lines, %s read, %s lines/s, sampling rate %g", si(float64(a.lines)), iec(float64(done)), si(rate), a.rate)
	if p.Total > 0 && done > 0 && !final {
		left := el * float64(p.Total-done) / float64(done)
		msg += fmt.Sprintf(", %.0f%%, ETA %s", 100*float64(done)/float64(p.Total), time.Duration(left*float64(time.Second)).Round(time.Second))
	}
	if final {
		msg += fmt.Sprintf(", done in %s", time.Duration(el*float64(time.Second)).Round(time.Millisecond))
	}
	fmt.Fprintln(p.W, msg)
	p.lastReport, p.lastLines = now, a.lines
}
