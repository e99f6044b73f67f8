package protocol

// The meta request parser. It follows memcached 1.6.18's proto_text.c
// (process_m*_command and _meta_flag_preparse): tokens split on spaces only,
// at most 20 tokens counted the way tokenize_command counts them, duplicate
// flags refused, and the first error found in flag order reported with the
// exact string memcached sends. Flags are kept in request order because
// memcached applies and reflects them in that order (`mg k t T30` answers the
// TTL from before the touch).

import "bytes"

// MetaCmd is a meta command.
type MetaCmd uint8

// The meta commands.
const (
	MetaNone   MetaCmd = iota
	MetaGet            // mg
	MetaSet            // ms
	MetaDelete         // md
	MetaArith          // ma
	MetaNoop           // mn
	MetaDebug          // me
)

// MetaMaxOpaque is the longest O token memcached accepts, including the O.
const MetaMaxOpaque = 32

// metaMaxTokens is memcached's MFLAG_MAX_OPT_LENGTH: a meta line may have at
// most this many tokens, counting tokenize_command's terminal token.
const metaMaxTokens = 20

// MetaMaxFlags bounds the flag tokens of one request (mg/md/ma: 17, ms: 16).
const MetaMaxFlags = metaMaxTokens - 3

// MetaErr is a request error; its String is the line memcached answers.
type MetaErr uint8

// The meta errors, named after memcached's messages.
const (
	MetaOK              MetaErr = iota
	MetaErrNoKey                // ERROR (a command with no key)
	MetaErrFormat               // CLIENT_ERROR bad command line format
	MetaErrTooManyGet           // CLIENT_ERROR options flags are too long (mg)
	MetaErrTooMany              // CLIENT_ERROR options flags too long
	MetaErrDuplicate            // CLIENT_ERROR duplicate flag
	MetaErrInvalidFlag          // CLIENT_ERROR invalid flag
	MetaErrBadToken             // CLIENT_ERROR bad token in command line format
	MetaErrKeyDecode            // CLIENT_ERROR error decoding key
	MetaErrMLength              // CLIENT_ERROR incorrect length for M token
	MetaErrInitial              // CLIENT_ERROR invalid numeric initial value
	MetaErrDelta                // CLIENT_ERROR invalid numeric delta value
	MetaErrOpaque               // CLIENT_ERROR opaque token too long
	MetaErrInvalidOrDup         // CLIENT_ERROR invalid or duplicate flag (md, ma)
	MetaErrSetMode              // CLIENT_ERROR invalid mode for ms M token
	MetaErrArithMode            // CLIENT_ERROR invalid mode for ma M token
	metaNumErrs
)

var metaErrText = [metaNumErrs]string{
	"",
	"ERROR",
	"CLIENT_ERROR bad command line format",
	"CLIENT_ERROR options flags are too long",
	"CLIENT_ERROR options flags too long",
	"CLIENT_ERROR duplicate flag",
	"CLIENT_ERROR invalid flag",
	"CLIENT_ERROR bad token in command line format",
	"CLIENT_ERROR error decoding key",
	"CLIENT_ERROR incorrect length for M token",
	"CLIENT_ERROR invalid numeric initial value",
	"CLIENT_ERROR invalid numeric delta value",
	"CLIENT_ERROR opaque token too long",
	"CLIENT_ERROR invalid or duplicate flag",
	"CLIENT_ERROR invalid mode for ms M token",
	"CLIENT_ERROR invalid mode for ma M token",
}

func (e MetaErr) String() string { return metaErrText[e] }

// MetaFlags is a set of flag letters: bit c-'A' for 'A' through 'z'.
type MetaFlags uint64

// Has reports whether flag letter c is in the set.
func (f MetaFlags) Has(c byte) bool { return c >= 'A' && c <= 'z' && f&(1<<(c-'A')) != 0 }

func (f *MetaFlags) set(c byte) { *f |= 1 << (c - 'A') }

// MetaRequest is one parsed meta request. It is reused across requests;
// Key and the flag tokens alias the parsed buffer.
type MetaRequest struct {
	Cmd     MetaCmd
	Err     MetaErr   // MetaOK, or the error to answer
	Key     []byte    // the key token as sent (still base64 when Flags.Has('b'))
	LineLen int       // bytes of the request line, through its '\n'
	DataLen int       // ms: data bytes after the line (without \r\n), -1 when no data block follows
	Flags   MetaFlags // every flag letter present
	nflags  int
	flags   [MetaMaxFlags][]byte // flag tokens in request order, letter included

	TTL         int32  // T
	Vivify      int32  // N
	Recache     int32  // R
	ClientFlags uint32 // F
	CAS         uint64 // C
	Initial     uint64 // J
	Delta       uint64 // D, default 1
	Mode        byte   // M, 0 if absent
}

// NumFlags is the number of flag tokens.
func (r *MetaRequest) NumFlags() int { return r.nflags }

// Flag returns flag token i (its letter followed by its argument, if any).
func (r *MetaRequest) Flag(i int) []byte { return r.flags[i] }

// Has reports whether flag letter c was sent.
func (r *MetaRequest) Has(c byte) bool { return r.Flags.Has(c) }

// MetaCommand reports which meta command buf starts with (after leading
// spaces), or MetaNone. The name must be a whole token.
func MetaCommand(buf []byte) MetaCmd {
	for len(buf) > 0 && buf[0] == ' ' {
		buf = buf[1:]
	}
	if len(buf) < 3 || buf[0] != 'm' || (buf[2] != ' ' && buf[2] != '\r' && buf[2] != '\n') {
		return MetaNone
	}
	switch buf[1] {
	case 'g':
		return MetaGet
	case 's':
		return MetaSet
	case 'd':
		return MetaDelete
	case 'a':
		return MetaArith
	case 'n':
		return MetaNoop
	case 'e':
		return MetaDebug
	}
	return MetaNone
}

// ParseMeta parses the meta request line at the start of buf into r. It
// returns the length of the line including its '\n', or 0 if buf holds no
// complete line yet (r is then untouched). An ms data block is not consumed:
// r.DataLen says how many bytes (plus \r\n) follow, and it is set even when
// r.Err is, once the length was understood, because memcached then swallows
// the data. A line that is not a meta command gets MetaErrNoKey ("ERROR").
func ParseMeta(buf []byte, r *MetaRequest) int {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		return 0
	}
	line := buf[:nl]
	if len(line) > 1 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// memcached treats the line as a C string.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	*r = MetaRequest{LineLen: nl + 1, DataLen: -1, Delta: 1}
	r.parse(line)
	return nl + 1
}

// nextToken returns the first space-separated token of s and the rest.
func nextToken(s []byte) (tok, rest []byte) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		return s, nil
	}
	return s[:i], s[i:]
}

func (r *MetaRequest) parse(line []byte) {
	cmd, rest := nextToken(line)
	if len(cmd) != 2 || cmd[0] != 'm' {
		r.Err = MetaErrNoKey
		return
	}
	switch cmd[1] {
	case 'g':
		r.Cmd = MetaGet
	case 's':
		r.Cmd = MetaSet
	case 'd':
		r.Cmd = MetaDelete
	case 'a':
		r.Cmd = MetaArith
	case 'n':
		r.Cmd = MetaNoop // mn ignores everything after it
		return
	case 'e':
		r.Cmd = MetaDebug
	default:
		r.Err = MetaErrNoKey
		return
	}
	r.Key, rest = nextToken(rest)
	if r.Cmd == MetaDebug {
		r.parseDebug(rest)
		return
	}
	if len(r.Key) == 0 {
		r.Err = MetaErrNoKey
		return
	}
	if len(r.Key) > MaxKeyLen {
		r.Err = MetaErrFormat
		return
	}
	var toks [metaMaxTokens][]byte
	n := 0
	for n < len(toks) {
		var t []byte
		t, rest = nextToken(rest)
		if len(t) == 0 {
			break
		}
		toks[n] = t
		n++
	}
	// ntokens in memcached counts the command, the key and a terminal token.
	if r.Cmd == MetaSet {
		if n == 0 {
			r.Err = MetaErrFormat
			return
		}
		if n+3 > metaMaxTokens {
			r.Err = MetaErrTooMany
			return
		}
		v, ok := parseInt32(toks[0])
		if !ok || v < 0 || v > 1<<31-1-2 {
			r.Err = MetaErrFormat
			return
		}
		r.DataLen = int(v)
		r.nflags = copy(r.flags[:], toks[1:n])
	} else {
		if n+3 > metaMaxTokens {
			r.Err = MetaErrTooMany
			if r.Cmd == MetaGet {
				r.Err = MetaErrTooManyGet
			}
			return
		}
		r.nflags = copy(r.flags[:], toks[:n])
	}
	if e := r.preparse(); e != MetaOK {
		if r.Cmd == MetaDelete || r.Cmd == MetaArith {
			e = MetaErrInvalidOrDup
		}
		r.Err = e
		return
	}
	r.Err = r.checkTokens()
}

// parseDebug handles `me <key> [b]`: memcached checks little here.
func (r *MetaRequest) parseDebug(rest []byte) {
	if len(r.Key) == 0 || len(r.Key) > MaxKeyLen {
		r.Err = MetaErrFormat
		return
	}
	t, _ := nextToken(rest)
	if len(t) == 1 && t[0] == 'b' {
		r.Flags.set('b')
		var tmp [MaxKeyLen]byte
		if Base64Decode(tmp[:], r.Key) == 0 {
			r.Err = MetaErrFormat
		}
	}
}

// preparse mirrors _meta_flag_preparse: a duplicate or unknown flag stops at
// once; a bad argument is remembered (the last one wins) and parsing goes on.
func (r *MetaRequest) preparse() MetaErr {
	bad := MetaOK
	for i := 0; i < r.nflags; i++ {
		t := r.flags[i]
		c := t[0]
		if c < 'A' || c > 'z' {
			if c >= 127 {
				return MetaErrDuplicate // memcached's seen[] check catches these
			}
			return MetaErrInvalidFlag
		}
		if r.Flags.Has(c) {
			return MetaErrDuplicate
		}
		r.Flags.set(c)
		arg := t[1:]
		switch c {
		case 'b':
			var tmp [MaxKeyLen]byte
			if Base64Decode(tmp[:], r.Key) == 0 {
				bad = MetaErrKeyDecode
			}
		case 'N', 'T', 'R':
			v, ok := parseInt32(arg)
			if !ok {
				bad = MetaErrBadToken
				break
			}
			switch c {
			case 'N':
				r.Vivify = v
			case 'T':
				r.TTL = v
			default:
				r.Recache = v
			}
		case 'F':
			v, ok := parseUint64(arg)
			if !ok {
				if bad == MetaOK {
					bad = MetaErrFormat
				}
				break
			}
			r.ClientFlags = uint32(v) // strtoul into a uint32: truncated
		case 'C':
			v, ok := parseUint64(arg)
			if !ok {
				bad = MetaErrBadToken
				break
			}
			r.CAS = v
		case 'M':
			if len(arg) != 1 {
				bad = MetaErrMLength
				break
			}
			r.Mode = arg[0]
		case 'J':
			v, ok := parseUint64(arg)
			if !ok {
				bad = MetaErrInitial
				break
			}
			r.Initial = v
		case 'D':
			v, ok := parseUint64(arg)
			if !ok {
				bad = MetaErrDelta
				break
			}
			r.Delta = v
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'v', 'h', 'u', 'q', 'l', 'I':
		default:
			return MetaErrInvalidFlag
		}
	}
	return bad
}

// checkTokens applies the per-command checks memcached makes after
// preparsing, in its order: the M mode, then the opaque length.
func (r *MetaRequest) checkTokens() MetaErr {
	opaqueLong := false
	for i := 0; i < r.nflags; i++ {
		if t := r.flags[i]; t[0] == 'O' && len(t) > MetaMaxOpaque {
			opaqueLong = true
		}
	}
	switch r.Cmd {
	case MetaSet:
		switch r.Mode {
		case 0, 'E', 'A', 'P', 'R', 'S':
		default:
			return MetaErrSetMode
		}
	case MetaArith:
		switch r.Mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return MetaErrArithMode
		}
	}
	if opaqueLong {
		return MetaErrOpaque
	}
	return MetaOK
}

// DecodeKey returns the key to look up: the token itself, or its base64
// decoding appended to dst[:0] when the b flag was sent. ParseMeta has
// already checked that the decoding succeeds.
func (r *MetaRequest) DecodeKey(dst []byte) []byte {
	if !r.Flags.Has('b') {
		return r.Key
	}
	if cap(dst) < len(r.Key) {
		dst = make([]byte, len(r.Key))
	}
	dst = dst[:len(r.Key)]
	return dst[:Base64Decode(dst, r.Key)]
}
