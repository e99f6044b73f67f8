package protocol

// The classic text protocol parser. It mirrors memcached 1.6.18's
// try_read_command_ascii, tokenize_command and process_command_ascii so that
// malformed input gets the same answer from Petrel as from memcached.

import "bytes"

// TextCmd is a classic text command.
type TextCmd uint8

// The classic text commands.
const (
	TextNone TextCmd = iota // unknown command
	TextGet
	TextGets
	TextGat
	TextGats
	TextSet
	TextAdd
	TextReplace
	TextAppend
	TextPrepend
	TextCas
	TextDelete
	TextIncr
	TextDecr
	TextTouch
	TextFlushAll
	TextVersion
	TextVerbosity
	TextQuit
	TextShutdown
	TextStats
	TextMeta // a meta command (mg, ms, md, ma, mn, me): the meta codec's job
)

// TextError is a protocol error found while parsing a line.
type TextError uint8

// Parse errors, each answered with memcached's exact line (see Reply).
const (
	TextOK             TextError = iota
	TextErrUnknown               // unknown command or wrong token count: ERROR
	TextErrFormat                // bad key, flags, exptime, length or cas
	TextErrDelete                // delete with a hold time other than 0
	TextErrExptime               // touch, gat and flush_all exptime
	TextErrDelta                 // incr/decr delta
	TextErrLineTooLong           // no \n within MaxLineLen: close the connection
)

// Reply returns the line memcached sends for e, without "\r\n". Line too long
// has none: memcached closes the connection without a word.
func (e TextError) Reply() string {
	switch e {
	case TextErrUnknown:
		return "ERROR"
	case TextErrFormat:
		return "CLIENT_ERROR bad command line format"
	case TextErrDelete:
		return "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	case TextErrExptime:
		return "CLIENT_ERROR invalid exptime argument"
	case TextErrDelta:
		return "CLIENT_ERROR invalid numeric delta argument"
	}
	return ""
}

// Limits of the text protocol, as in memcached.
const (
	// MaxLineLen is how much input without a \n memcached tolerates before it
	// closes the connection, unless the line is a get or gets (multigets are
	// unbounded).
	MaxLineLen = 2048
	maxTokens  = 24 // MAX_TOKENS: memcached's token array, terminator included
	inlineKeys = 24 // keys held without allocating
)

// TextRequest is one parsed classic text request. Parse overwrites every
// field; byte slices alias the buffer passed to Parse. Reuse one per
// connection so that parsing allocates nothing.
type TextRequest struct {
	Cmd     TextCmd
	Err     TextError
	Line    int      // bytes of the command line, \n included
	Keys    [][]byte // get/gat keys; the key of single-key commands; stats/shutdown arguments
	Flags   uint32
	Exptime int64  // as sent (truncated to 32 bits like memcached); see also ExptimeSet
	VLen    int    // storage commands: data bytes that follow the line (without \r\n)
	CAS     uint64 // cas: the compare value
	Delta   uint64 // incr/decr
	Level   uint32 // verbosity
	NoReply bool
	// ExptimeSet is false for a flush_all without a delay.
	ExptimeSet bool
	// Skip is the number of spaces before the command (meta requests are
	// handed over without them).
	Skip int

	keyArr [inlineKeys][]byte
	tok    [maxTokens][]byte
}

// Key returns the single key of a storage, delete, incr/decr or touch request.
func (r *TextRequest) Key() []byte { return r.Keys[0] }

// Total is the number of bytes a storage request occupies: line, data and
// the data's \r\n.
func (r *TextRequest) Total() int { return r.Line + r.VLen + 2 }

// Data returns a storage request's data block from buf (the buffer given to
// Parse). complete is false when buf does not yet hold Total() bytes; ok is
// false when the block does not end in \r\n (memcached's "bad data chunk").
func (r *TextRequest) Data(buf []byte) (data []byte, complete, ok bool) {
	end := r.Total()
	if len(buf) < end {
		return nil, false, false
	}
	return buf[r.Line : end-2], true, buf[end-2] == '\r' && buf[end-1] == '\n'
}

// Parse parses the request line at the start of buf. It returns the length
// of the line including its \n, or 0 if buf holds no complete line yet; then
// r.Err is TextErrLineTooLong when the connection must be closed. A line that
// fails to parse sets r.Err; its length is still returned so the caller can
// skip it, and r.Cmd says which command it was (TextNone if unknown).
// Storage commands' data is not checked: see Data.
func (r *TextRequest) Parse(buf []byte) int {
	r.Cmd, r.Err, r.Line = TextNone, TextOK, 0
	r.Flags, r.Exptime, r.VLen, r.CAS, r.Delta, r.Level = 0, 0, 0, 0, 0, 0
	r.NoReply, r.ExptimeSet, r.Skip = false, false, 0
	if r.Keys == nil {
		r.Keys = r.keyArr[:0]
	}
	r.Keys = r.Keys[:0]

	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > MaxLineLen && !longGetOK(buf) {
			r.Err = TextErrLineTooLong
		}
		return 0
	}
	r.Line = nl + 1
	line := buf[:nl]
	if nl > 1 && line[nl-1] == '\r' {
		line = line[:nl-1]
	}
	// memcached tokenizes a C string: anything after a NUL is invisible.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	for r.Skip < len(line) && line[r.Skip] == ' ' {
		r.Skip++
	}
	nt, rest := r.tokenize(line)
	r.dispatch(nt, rest)
	return r.Line
}

// longGetOK reports whether an unterminated long line may keep growing:
// memcached lets only get and gets lines exceed MaxLineLen.
func longGetOK(buf []byte) bool {
	i := 0
	for i < len(buf) && buf[i] == ' ' {
		i++
	}
	if i > 100 {
		return false
	}
	b := buf[i:]
	return bytes.HasPrefix(b, []byte("get ")) || bytes.HasPrefix(b, []byte("gets "))
}

// tokenize splits line on spaces into r.tok like memcached's
// tokenize_command: runs of spaces separate, at most maxTokens-1 tokens are
// kept, and nt counts them plus the terminating token. rest is the
// unsplit remainder after the last kept token (only multigets read it).
func (r *TextRequest) tokenize(line []byte) (nt int, rest []byte) {
	n, i := 0, 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		r.tok[n] = line[i:j]
		n++
		i = j
		if n == maxTokens-1 {
			break
		}
	}
	return n + 1, line[i:]
}

func (r *TextRequest) dispatch(nt int, rest []byte) {
	if nt < 2 || len(r.tok[0]) < 2 {
		r.Err = TextErrUnknown
		return
	}
	cmd := r.tok[0]
	if len(cmd) == 2 && cmd[0] == 'm' {
		switch cmd[1] {
		case 'g', 's', 'd', 'a', 'n', 'e':
			r.Cmd = TextMeta
		default:
			r.Err = TextErrUnknown
		}
		return
	}
	switch string(cmd) {
	case "get":
		r.parseRetrieval(TextGet, nt, rest)
	case "gets":
		r.parseRetrieval(TextGets, nt, rest)
	case "gat":
		r.parseRetrieval(TextGat, nt, rest)
	case "gats":
		r.parseRetrieval(TextGats, nt, rest)
	case "set":
		r.parseStorage(TextSet, nt)
	case "add":
		r.parseStorage(TextAdd, nt)
	case "replace":
		r.parseStorage(TextReplace, nt)
	case "append":
		r.parseStorage(TextAppend, nt)
	case "prepend":
		r.parseStorage(TextPrepend, nt)
	case "cas":
		r.parseStorage(TextCas, nt)
	case "incr":
		r.parseArith(TextIncr, nt)
	case "decr":
		r.parseArith(TextDecr, nt)
	case "delete":
		r.parseDelete(nt)
	case "touch":
		r.parseTouch(nt)
	case "flush_all":
		r.parseFlushAll(nt)
	case "verbosity":
		r.parseVerbosity(nt)
	case "version":
		r.Cmd = TextVersion
	case "quit":
		r.Cmd = TextQuit
	case "shutdown":
		r.Cmd = TextShutdown
		r.Keys = append(r.Keys, r.tok[1:nt-1]...)
	case "stats":
		r.Cmd = TextStats
		r.Keys = append(r.Keys, r.tok[1:nt-1]...)
	default:
		r.Err = TextErrUnknown
	}
}

// setNoReply is memcached's set_noreply_maybe: the last token decides.
func (r *TextRequest) setNoReply(nt int) {
	r.NoReply = string(r.tok[nt-2]) == "noreply"
}

// singleKey stores the key token and checks its length.
func (r *TextRequest) singleKey() bool {
	r.Keys = append(r.Keys, r.tok[1])
	if len(r.tok[1]) > MaxKeyLen {
		r.Err = TextErrFormat
		return false
	}
	return true
}

func (r *TextRequest) parseRetrieval(cmd TextCmd, nt int, rest []byte) {
	if nt < 3 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = cmd
	first := 1
	if cmd == TextGat || cmd == TextGats {
		e, ok := textInt(r.tok[1])
		if !ok {
			r.Err = TextErrExptime
			return
		}
		r.Exptime, r.ExptimeSet = e, true
		first = 2
	}
	for _, k := range r.tok[first : nt-1] {
		if !r.addKey(k) {
			return
		}
	}
	// memcached re-tokenizes the rest of a long multiget in chunks; splitting
	// it all at once gives the same keys.
	for len(rest) > 0 {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		if j > 0 && !r.addKey(rest[:j]) {
			return
		}
		rest = rest[j:]
	}
}

func (r *TextRequest) addKey(k []byte) bool {
	if len(k) > MaxKeyLen {
		r.Err = TextErrFormat
		return false
	}
	r.Keys = append(r.Keys, k)
	return true
}

func (r *TextRequest) parseStorage(cmd TextCmd, nt int) {
	want := 6
	if cmd == TextCas {
		want = 7
	}
	if nt != want && nt != want+1 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = cmd
	r.setNoReply(nt)
	if !r.singleKey() {
		return
	}
	flags, ok1 := parseUint32(r.tok[2])
	exptime, ok2 := textInt(r.tok[3])
	vlen, ok3 := textInt(r.tok[4])
	ok4 := true
	if cmd == TextCas {
		r.CAS, ok4 = parseUint64(r.tok[5])
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || vlen < 0 || vlen > 1<<31-1-2 {
		r.Err = TextErrFormat
		return
	}
	r.Flags, r.Exptime, r.ExptimeSet, r.VLen = flags, exptime, true, int(vlen)
}

func (r *TextRequest) parseArith(cmd TextCmd, nt int) {
	if nt != 4 && nt != 5 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = cmd
	r.setNoReply(nt)
	if !r.singleKey() {
		return
	}
	d, ok := parseUint64(r.tok[2])
	if !ok {
		r.Err = TextErrDelta
		return
	}
	r.Delta = d
}

func (r *TextRequest) parseDelete(nt int) {
	if nt < 3 || nt > 5 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = TextDelete
	if nt > 3 {
		// The legacy "delete <key> 0" form survives; any other hold time is
		// refused.
		holdZero := string(r.tok[2]) == "0"
		r.setNoReply(nt)
		if !(nt == 4 && (holdZero || r.NoReply) || nt == 5 && holdZero && r.NoReply) {
			r.Err = TextErrDelete
			return
		}
	}
	r.singleKey()
}

func (r *TextRequest) parseTouch(nt int) {
	if nt != 4 && nt != 5 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = TextTouch
	r.setNoReply(nt)
	if !r.singleKey() {
		return
	}
	e, ok := textInt(r.tok[2])
	if !ok {
		r.Err = TextErrExptime
		return
	}
	r.Exptime, r.ExptimeSet = e, true
}

func (r *TextRequest) parseFlushAll(nt int) {
	if nt < 2 || nt > 4 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = TextFlushAll
	r.setNoReply(nt)
	noDelay := 2
	if r.NoReply {
		noDelay = 3
	}
	if nt == noDelay {
		return
	}
	e, ok := textInt(r.tok[1])
	if !ok {
		r.Err = TextErrExptime
		return
	}
	r.Exptime, r.ExptimeSet = e, true
}

func (r *TextRequest) parseVerbosity(nt int) {
	if nt != 3 && nt != 4 {
		r.Err = TextErrUnknown
		return
	}
	r.Cmd = TextVerbosity
	r.setNoReply(nt)
	v, ok := parseUint32(r.tok[1])
	if !ok {
		r.Err = TextErrFormat
		return
	}
	r.Level = v
}

// textInt is parseInt32 widened to the int64 fields of TextRequest.
func textInt(tok []byte) (int64, bool) {
	v, ok := parseInt32(tok)
	return int64(v), ok
}
