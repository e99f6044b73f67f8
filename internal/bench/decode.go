package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
)

// errDesync means a reply did not fit the request: the connection can no
// longer be trusted and is closed.
var errDesync = errors.New("protocol desync")

// outcome of one reply unit (one key of a get, or one write).
type outcome uint8

const (
	hit outcome = iota
	miss
	failed
)

// decoder reads replies. For each value it returns the CRC32-C and length,
// computed while the bytes stream past, so nothing is copied.
type decoder struct {
	proto  string
	r      *bufio.Reader
	ks     *keySpace
	verify bool
	errMsg string // the error line of the last failed outcome
}

func (d *decoder) line() ([]byte, error) {
	l, err := d.r.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q lacks CRLF", errDesync, trunc(l))
	}
	return l[:len(l)-2], nil
}

// data consumes n bytes of value plus CRLF and returns their checksum state
// (see checksum) when verifying.
func (d *decoder) data(n int) (uint64, error) {
	var crc uint32
	left := n
	for left > 0 {
		b, err := d.r.Peek(min(left, d.r.Size()))
		if len(b) == 0 {
			return 0, fmt.Errorf("read value: %w", err)
		}
		if d.verify {
			crc = crc32.Update(crc, castagnoli, b)
		}
		d.r.Discard(len(b))
		left -= len(b)
	}
	end, err := d.r.Peek(2)
	if err != nil {
		return 0, fmt.Errorf("read value end: %w", err)
	}
	if end[0] != '\r' || end[1] != '\n' {
		return 0, fmt.Errorf("%w: value not followed by CRLF", errDesync)
	}
	d.r.Discard(2)
	return statePresent | uint64(n)<<32 | uint64(crc), nil
}

// isError reports whether l is an error reply, and remembers it.
func (d *decoder) isError(l []byte) bool {
	if bytes.HasPrefix(l, []byte("SERVER_ERROR")) || bytes.HasPrefix(l, []byte("CLIENT_ERROR")) ||
		bytes.Equal(l, []byte("ERROR")) || (d.proto == "resp" && len(l) > 0 && l[0] == '-') {
		d.errMsg = string(trunc(l))
		return true
	}
	return false
}

func (d *decoder) unexpected(l []byte) error {
	return fmt.Errorf("%w: unexpected reply %q", errDesync, trunc(l))
}

// get reads the replies to a get of ids; seen is called once per key
// returned, with its index in ids (or -1 when unknown) and its checksum.
// It returns failed when the server answered with an error.
func (d *decoder) get(ids []int, seen func(i int, sum uint64)) (outcome, error) {
	switch d.proto {
	case "meta":
		var o outcome = hit
		for i := range ids {
			l, err := d.line()
			if err != nil {
				return failed, err
			}
			switch {
			case bytes.Equal(l, []byte("EN")):
			case bytes.HasPrefix(l, []byte("VA ")):
				n, err := atoiField(l[3:])
				if err != nil {
					return failed, d.unexpected(l)
				}
				sum, err := d.data(n)
				if err != nil {
					return failed, err
				}
				seen(i, sum)
			case d.isError(l):
				o = failed
			default:
				return failed, d.unexpected(l)
			}
		}
		return o, nil
	case "resp":
		return d.respGet(ids, seen)
	}
	for {
		l, err := d.line()
		if err != nil {
			return failed, err
		}
		if bytes.Equal(l, []byte("END")) {
			return hit, nil
		}
		if d.isError(l) {
			return failed, nil
		}
		// VALUE <key> <flags> <bytes> [<cas>]
		f := bytes.Fields(l)
		if len(f) < 4 || !bytes.Equal(f[0], []byte("VALUE")) {
			return failed, d.unexpected(l)
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 {
			return failed, d.unexpected(l)
		}
		// The line is in the reader's buffer, which reading the data reuses.
		i := indexOfKey(d.ks, ids, f[1])
		sum, err := d.data(n)
		if err != nil {
			return failed, err
		}
		seen(i, sum)
	}
}

func (d *decoder) respGet(ids []int, seen func(i int, sum uint64)) (outcome, error) {
	if len(ids) > 1 {
		l, err := d.line()
		if err != nil {
			return failed, err
		}
		if d.isError(l) {
			return failed, nil
		}
		if len(l) < 2 || l[0] != '*' {
			return failed, d.unexpected(l)
		}
		if n, err := strconv.Atoi(string(l[1:])); err != nil || n != len(ids) {
			return failed, d.unexpected(l)
		}
	}
	for i := range ids {
		l, err := d.line()
		if err != nil {
			return failed, err
		}
		if d.isError(l) {
			return failed, nil
		}
		if len(l) < 2 || l[0] != '$' {
			return failed, d.unexpected(l)
		}
		n, err := strconv.Atoi(string(l[1:]))
		if err != nil {
			return failed, d.unexpected(l)
		}
		if n < 0 {
			continue
		}
		sum, err := d.data(n)
		if err != nil {
			return failed, err
		}
		seen(i, sum)
	}
	return hit, nil
}

// simple reads the one-line reply to a set, delete or incr.
func (d *decoder) simple(k opKind) (outcome, error) {
	l, err := d.line()
	if err != nil {
		return failed, err
	}
	if d.isError(l) {
		return failed, nil
	}
	if d.proto == "resp" {
		switch {
		case k == opSet && bytes.Equal(l, []byte("+OK")):
			return hit, nil
		case k == opDelete && bytes.Equal(l, []byte(":0")):
			return miss, nil
		case k == opAdd && bytes.Equal(l, []byte(":0")):
			return miss, nil
		case (k == opDelete || k == opIncr || k == opAdd) && len(l) > 1 && l[0] == ':':
			return hit, nil
		}
		return failed, d.unexpected(l)
	}
	if d.proto == "meta" {
		switch {
		case bytes.Equal(l, []byte("HD")):
			return hit, nil
		case bytes.Equal(l, []byte("NF")) && k != opSet:
			return miss, nil
		case (bytes.Equal(l, []byte("NS")) || bytes.Equal(l, []byte("EX"))) && k == opSet:
			d.errMsg = string(l)
			return failed, nil
		case bytes.Equal(l, []byte("NS")) && k == opAdd:
			return miss, nil // another connection created it first
		}
		return failed, d.unexpected(l)
	}
	switch k {
	case opSet:
		if bytes.Equal(l, []byte("STORED")) {
			return hit, nil
		}
		if bytes.Equal(l, []byte("NOT_STORED")) {
			d.errMsg = "NOT_STORED"
			return failed, nil
		}
	case opDelete:
		if bytes.Equal(l, []byte("DELETED")) {
			return hit, nil
		}
		if bytes.Equal(l, []byte("NOT_FOUND")) {
			return miss, nil
		}
	case opAdd:
		if bytes.Equal(l, []byte("STORED")) {
			return hit, nil
		}
		if bytes.Equal(l, []byte("NOT_STORED")) {
			return miss, nil // another connection created it first
		}
	case opIncr:
		if bytes.Equal(l, []byte("NOT_FOUND")) {
			return miss, nil
		}
		if _, err := strconv.ParseUint(string(l), 10, 64); err == nil {
			return hit, nil
		}
	}
	return failed, d.unexpected(l)
}

// indexOfKey finds which of ids a returned key belongs to, or -1.
func indexOfKey(ks *keySpace, ids []int, key []byte) int {
	rest, ok := bytes.CutPrefix(key, []byte(ks.prefix))
	if !ok {
		return -1
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	id, err := strconv.Atoi(string(rest[:end]))
	if err != nil {
		return -1
	}
	for i, x := range ids {
		if x == id && ks.keyLenOf(id) == len(key) {
			return i
		}
	}
	return -1
}

func atoiField(b []byte) (int, error) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	n, err := strconv.Atoi(string(b))
	if err == nil && n < 0 {
		err = errors.New("negative length")
	}
	return n, err
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
