package analyze

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Header is the first line of every v1 command log file.
const Header = "# petrel-cmdlog v1 fields=time,client,cmd,key,flags,vlen,ttl,result,rlen"

// Class groups commands by what they do to the cache.
type Class uint8

const (
	ClassOther  Class = iota
	ClassRead         // get, gets, gat, gats, mg and their binary forms
	ClassStore        // set, add, replace, append, prepend, cas, ms
	ClassArith        // incr, decr, ma
	ClassDelete       // delete, md
	ClassTouch        // touch
	ClassFlush        // flush_all
	numClasses
)

var classNames = [numClasses]string{"other", "read", "store", "arith", "delete", "touch", "flush"}

func (c Class) String() string { return classNames[c] }

// Result is a log line's result code.
type Result uint8

const (
	ResOther Result = iota
	ResHit
	ResMiss
	ResStored
	ResNotStored
	ResExists
	ResNotFound
	ResDeleted
	ResTouched
	ResError
	ResOK
	numResults
)

var resultNames = [numResults]string{"other", "hit", "miss", "stored", "not_stored", "exists", "not_found", "deleted", "touched", "error", "ok"}

func (r Result) String() string { return resultNames[r] }

// Record is one parsed log line. Byte slices alias the line being parsed
// and are valid until the next line is read.
type Record struct {
	Micros int64  // unix time in microseconds
	Cmd    []byte // as logged, e.g. "get" or "b:setq"
	Class  Class
	Append bool   // append/prepend: vlen adds to the stored value
	Key    []byte // as logged (raw, b64:..., h:...); nil for "-"
	KeyLen int    // the key's length in bytes (decoded for b64:)
	Flags  uint32 //
	VLen   int64
	TTL    int64 // exptime as the client sent it
	Result Result
	RLen   int64
	Gat    bool // a read that also sets the exptime (gat, gats)
}

// fieldSet maps the header's field names to column numbers, so that a
// logger writing the fields in another order, or with extra fields, is
// still read correctly.
type fieldSet struct {
	time, client, cmd, key, flags, vlen, ttl, result, rlen int
	n                                                      int
}

var v1Fields = fieldSet{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}

// parseHeader reads a "# petrel-cmdlog vN fields=..." line. ok is false for
// other comments.
func parseHeader(line []byte) (fs fieldSet, ok bool, err error) {
	s := strings.TrimSpace(string(line))
	if !strings.HasPrefix(s, "# petrel-cmdlog ") {
		return fs, false, nil
	}
	parts := strings.Fields(s[len("# petrel-cmdlog "):])
	if len(parts) == 0 || parts[0] != "v1" {
		return fs, true, fmt.Errorf("unsupported command log version %q (this reader knows v1)", strings.Join(parts[:min(1, len(parts))], ""))
	}
	fs = v1Fields
	for _, p := range parts[1:] {
		list, found := strings.CutPrefix(p, "fields=")
		if !found {
			continue
		}
		names := strings.Split(list, ",")
		idx := map[string]int{}
		for i, n := range names {
			idx[n] = i
		}
		get := func(name string, dst *int) {
			if i, has := idx[name]; has {
				*dst = i
			} else if err == nil {
				err = fmt.Errorf("command log header lacks field %q", name)
			}
		}
		get("time", &fs.time)
		get("client", &fs.client)
		get("cmd", &fs.cmd)
		get("key", &fs.key)
		get("flags", &fs.flags)
		get("vlen", &fs.vlen)
		get("ttl", &fs.ttl)
		get("result", &fs.result)
		get("rlen", &fs.rlen)
		fs.n = len(names)
	}
	return fs, true, err
}

var errMalformed = errors.New("malformed line")

// parse fills r from one line (without its newline).
func (fs *fieldSet) parse(line []byte, r *Record) error {
	var cols [16][]byte
	n := 0
	for len(line) > 0 {
		if n == fs.n || n == len(cols) {
			return errMalformed
		}
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			cols[n], line = line, nil
		} else {
			cols[n], line = line[:i], line[i+1:]
		}
		if len(cols[n]) == 0 {
			return errMalformed
		}
		n++
	}
	if n != fs.n {
		return errMalformed
	}
	var ok bool
	if r.Micros, ok = parseTime(cols[fs.time]); !ok {
		return errMalformed
	}
	r.Cmd = cols[fs.cmd]
	r.Class, r.Append, r.Gat = classify(r.Cmd)
	r.Key = cols[fs.key]
	r.KeyLen = len(r.Key)
	switch {
	case len(r.Key) == 1 && r.Key[0] == '-':
		r.Key, r.KeyLen = nil, 0
	case bytes.HasPrefix(r.Key, []byte("b64:")):
		n := base64.StdEncoding.DecodedLen(len(r.Key) - 4)
		if k := r.Key; len(k) >= 4+4 && k[len(k)-1] == '=' {
			n--
			if k[len(k)-2] == '=' {
				n--
			}
		}
		r.KeyLen = n
	}
	flags, ok1 := parseInt(cols[fs.flags])
	var ok2, ok3, ok4 bool
	r.VLen, ok2 = parseInt(cols[fs.vlen])
	r.TTL, ok3 = parseInt(cols[fs.ttl])
	r.RLen, ok4 = parseInt(cols[fs.rlen])
	if !ok1 || !ok2 || !ok3 || !ok4 || flags < 0 || flags > 1<<32-1 || r.VLen < 0 || r.RLen < 0 {
		return errMalformed
	}
	r.Flags = uint32(flags)
	if !r.Gat && r.TTL != 0 && string(r.Cmd) == "mg" {
		r.Gat = true // mg with T: the logger only fills ttl then
	}
	if r.Result, ok = parseResult(cols[fs.result]); !ok {
		return errMalformed
	}
	return nil
}

// parseTime reads "seconds.micros" (the fraction may have 0 to 6 digits).
func parseTime(b []byte) (int64, bool) {
	sec, frac, _ := bytes.Cut(b, []byte{'.'})
	s, ok := parseInt(sec)
	if !ok || s < 0 || len(frac) > 6 {
		return 0, false
	}
	us := int64(0)
	for i := 0; i < 6; i++ {
		us *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			us += int64(c - '0')
		}
	}
	return s*1e6 + us, true
}

// parseInt reads a decimal integer with an optional minus sign, without
// the allocation of strconv on a []byte.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func parseResult(b []byte) (Result, bool) {
	for i := ResHit; i < numResults; i++ {
		if string(b) == resultNames[i] {
			return i, true
		}
	}
	return 0, false
}

// classify names a command's class. Binary opcodes are "b:" plus the text
// name, with a trailing "q" for the quiet variants and a "k" for the ones
// that return the key.
func classify(cmd []byte) (c Class, appendish, gat bool) {
	s := string(cmd)
	if t, ok := strings.CutPrefix(s, "b:"); ok {
		s = t
		if _, known := commandClass[s]; !known {
			s = strings.TrimSuffix(s, "q")
			if _, known := commandClass[s]; !known {
				s = strings.TrimSuffix(s, "k")
			}
		}
	}
	c = commandClass[s]
	return c, s == "append" || s == "prepend", s == "gat" || s == "gats"
}

var commandClass = map[string]Class{
	"get": ClassRead, "gets": ClassRead, "gat": ClassRead, "gats": ClassRead, "mg": ClassRead,
	"set": ClassStore, "add": ClassStore, "replace": ClassStore, "append": ClassStore,
	"prepend": ClassStore, "cas": ClassStore, "ms": ClassStore,
	"incr": ClassArith, "decr": ClassArith, "ma": ClassArith, "increment": ClassArith, "decrement": ClassArith,
	"delete": ClassDelete, "md": ClassDelete,
	"touch":     ClassTouch,
	"flush_all": ClassFlush, "flush": ClassFlush,
}
