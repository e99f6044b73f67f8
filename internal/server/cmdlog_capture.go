package server

// Capturing requests for the command logger (internal/cmdlog) without
// touching the executors: after a request has run, the connection loop
// hands logRequest the request's bytes and the reply the executor appended,
// and the request is re-parsed and the reply classified here. Only sampled
// requests pay for this; with the logger off the loop pays one atomic load.

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"petrel/internal/cmdlog"
	"petrel/internal/protocol"
)

// cmdlogSession is a connection's logging state, made on its first logged
// request.
type cmdlogSession struct {
	l    *cmdlog.Logger
	ring *cmdlog.Ring
	skip int // requests to pass over before the next sampled one
	txt  protocol.TextRequest
	meta protocol.MetaRequest
	bin  protocol.BinRequest
	key  []byte // a decoded meta base64 key
	peer []byte // the UDP client of the current datagram
	rec  cmdlog.Record
}

// logRequest logs the request just executed from buf (st says how much of
// it) whose reply starts at s.out[mark:]. client is the connection's
// address as conn.remote names it.
func (s *session) logRequest(l *cmdlog.Logger, client string, buf []byte, st step, mark int) {
	cs := s.cmdlogSample(l, client)
	if cs == nil || st.n == 0 {
		return
	}
	var reply []byte
	if mark <= len(s.out) {
		reply = s.out[mark:]
	}
	cs.capture(buf[:min(st.n, len(buf))], reply)
}

// logUDP is logRequest for a request that came in a datagram from peer.
func (s *session) logUDP(l *cmdlog.Logger, peer netip.AddrPort, buf []byte, st step, mark int) {
	cs := s.cmdlogSample(l, "")
	if cs == nil || st.n == 0 {
		return
	}
	cs.peer = peer.AppendTo(append(cs.peer[:0], "udp:"...))
	cs.rec.Client = cs.peer
	var reply []byte
	if mark <= len(s.out) {
		reply = s.out[mark:]
	}
	cs.capture(buf[:min(st.n, len(buf))], reply)
}

// cmdlogSample returns the session's logging state when this request is
// sampled, nil when it is passed over. A logger that replaced the one the
// session knew gets a new ring.
func (s *session) cmdlogSample(l *cmdlog.Logger, client string) *cmdlogSession {
	cs := s.clog
	if cs == nil || cs.l != l {
		if cs == nil {
			cs = new(cmdlogSession)
			s.clog = cs
		} else if cs.ring != nil {
			cs.ring.Release()
		}
		cs.l = l
		cs.ring = l.NewRing(cmdlog.ClientAddr(client))
		cs.skip = l.SampleStart()
	}
	if cs.skip > 0 {
		cs.skip--
		return nil
	}
	cs.skip = l.Sample() - 1
	cs.rec.Client = nil
	return cs
}

// cmdlogRelease gives the connection's ring back when it closes.
func (s *session) cmdlogRelease() {
	if s.clog != nil && s.clog.ring != nil {
		s.clog.ring.Release()
		s.clog.ring, s.clog.l = nil, nil
	}
}

// capture builds the records of one request and puts them in the ring.
func (cs *cmdlogSession) capture(req, reply []byte) {
	rec := &cs.rec
	client := rec.Client
	*rec = cmdlog.Record{Time: cmdlog.Now(), Client: client}
	switch {
	case len(req) > 0 && req[0] == protocol.BinReqMagic:
		cs.captureBinary(req, reply)
	default:
		cs.captureText(req, reply)
	}
}

var textCmds = [...]cmdlog.Cmd{
	protocol.TextGet: cmdlog.CmdGet, protocol.TextGets: cmdlog.CmdGets,
	protocol.TextGat: cmdlog.CmdGat, protocol.TextGats: cmdlog.CmdGats,
	protocol.TextSet: cmdlog.CmdSet, protocol.TextAdd: cmdlog.CmdAdd,
	protocol.TextReplace: cmdlog.CmdReplace, protocol.TextAppend: cmdlog.CmdAppend,
	protocol.TextPrepend: cmdlog.CmdPrepend, protocol.TextCas: cmdlog.CmdCas,
	protocol.TextDelete: cmdlog.CmdDelete, protocol.TextIncr: cmdlog.CmdIncr,
	protocol.TextDecr: cmdlog.CmdDecr, protocol.TextTouch: cmdlog.CmdTouch,
	protocol.TextFlushAll: cmdlog.CmdFlushAll,
	protocol.TextStats:    cmdlog.CmdOther, // the table's length covers every command
}

func (cs *cmdlogSession) put() { cs.ring.Put(&cs.rec) }

func (cs *cmdlogSession) captureText(req, reply []byte) {
	r, rec := &cs.txt, &cs.rec
	if r.Parse(req) == 0 {
		rec.Cmd, rec.NoKey, rec.Result, rec.RLen = cmdlog.CmdOther, true, classifyLine(reply), uint32(len(reply))
		cs.put()
		return
	}
	if r.Cmd == protocol.TextMeta {
		cs.captureMeta(req[r.Skip:], reply)
		return
	}
	if int(r.Cmd) < len(textCmds) {
		rec.Cmd = textCmds[r.Cmd]
	}
	rec.RLen = uint32(len(reply))
	if len(r.Keys) > 0 && rec.Cmd != cmdlog.CmdOther {
		rec.Key = r.Keys[0]
	} else {
		rec.NoKey = true
	}
	if r.Err != protocol.TextOK {
		// An error, unless the line was an extension such as `cmdlog`
		// that the parser does not know but the server answered.
		rec.Result = cmdlog.ResError
		if len(reply) > 0 {
			rec.Result = classifyLine(reply)
		}
		cs.put()
		return
	}
	switch r.Cmd {
	case protocol.TextGet, protocol.TextGets, protocol.TextGat, protocol.TextGats:
		cs.captureGets(r, reply)
		return
	case protocol.TextSet, protocol.TextAdd, protocol.TextReplace,
		protocol.TextAppend, protocol.TextPrepend, protocol.TextCas:
		rec.Flags, rec.VLen, rec.TTL = r.Flags, uint32(r.VLen), r.Exptime
		rec.Result = noreplyResult(r.NoReply, reply)
	case protocol.TextTouch:
		rec.TTL = r.Exptime
		rec.Result = noreplyResult(r.NoReply, reply)
	default:
		rec.Result = noreplyResult(r.NoReply, reply)
	}
	cs.put()
}

// noreplyResult is the result of a reply, or ok when noreply silenced it:
// the server sent nothing to classify. (A quiet meta or binary command is
// different: silence there means success, see their capture.)
func noreplyResult(noreply bool, reply []byte) cmdlog.Result {
	if noreply && len(reply) == 0 {
		return cmdlog.ResOK
	}
	return classifyLine(reply)
}

// captureGets logs one line per key of a get, gets, gat or gats, walking
// the VALUE blocks of the reply in key order: a key whose block comes next
// was a hit, any other a miss. The closing END (or an error) is charged to
// the last line, so the lines' rlen add up to the reply.
func (cs *cmdlogSession) captureGets(r *protocol.TextRequest, reply []byte) {
	rec := &cs.rec
	if r.Cmd == protocol.TextGat || r.Cmd == protocol.TextGats {
		rec.TTL = r.Exptime
	}
	rest := reply
	for i, key := range r.Keys {
		rec.Key, rec.Flags, rec.VLen, rec.RLen, rec.Result = key, 0, 0, 0, cmdlog.ResMiss
		if k, flags, vlen, n, ok := valueBlock(rest); ok && bytes.Equal(k, key) {
			rec.Flags, rec.VLen, rec.RLen, rec.Result = flags, vlen, uint32(n), cmdlog.ResHit
			rest = rest[n:]
		} else if len(rest) > 0 && !ok && !bytes.HasPrefix(rest, []byte("END\r\n")) {
			rec.Result = cmdlog.ResError // SERVER_ERROR and the like instead of a value
		}
		if i == len(r.Keys)-1 {
			rec.RLen += uint32(len(rest))
		}
		cs.put()
	}
}

// valueBlock parses "VALUE key flags bytes [cas]\r\n<data>\r\n" at the
// start of b, returning the block's length.
func valueBlock(b []byte) (key []byte, flags, vlen uint32, n int, ok bool) {
	if !bytes.HasPrefix(b, []byte("VALUE ")) {
		return nil, 0, 0, 0, false
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, 0, 0, 0, false
	}
	var arr [5][]byte
	f := tokens(arr[:0], b[6:nl])
	if len(f) < 3 {
		return nil, 0, 0, 0, false
	}
	fl, ok1 := atou(f[1])
	vl, ok2 := atou(f[2])
	if !ok1 || !ok2 {
		return nil, 0, 0, 0, false
	}
	n = len(b)
	if vl < uint64(len(b)) {
		n = min(nl+1+int(vl)+2, len(b))
	}
	return f[0], uint32(fl), uint32(vl), n, true
}

// tokens appends the space-separated words of line (without a trailing
// \r) to dst, up to its capacity, without allocating.
func tokens(dst [][]byte, line []byte) [][]byte {
	line = bytes.TrimSuffix(line, []byte("\r"))
	for len(line) > 0 && len(dst) < cap(dst) {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		j := bytes.IndexByte(line, ' ')
		if j < 0 {
			j = len(line)
		}
		if j > 0 {
			dst = append(dst, line[:j])
		}
		line = line[j:]
	}
	return dst
}

func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// classifyLine maps the first line of a classic text reply to a result.
func classifyLine(reply []byte) cmdlog.Result {
	word := reply
	if i := bytes.IndexAny(word, " \r\n"); i >= 0 {
		word = word[:i]
	}
	switch string(word) {
	case "STORED":
		return cmdlog.ResStored
	case "NOT_STORED":
		return cmdlog.ResNotStored
	case "EXISTS":
		return cmdlog.ResExists
	case "NOT_FOUND":
		return cmdlog.ResNotFound
	case "DELETED":
		return cmdlog.ResDeleted
	case "TOUCHED":
		return cmdlog.ResTouched
	case "ERROR", "ERROR:", "CLIENT_ERROR", "SERVER_ERROR":
		return cmdlog.ResError
	}
	return cmdlog.ResOK // OK, numbers from incr/decr, VERSION, STAT..., END
}

var metaCmds = [...]cmdlog.Cmd{
	protocol.MetaGet: cmdlog.CmdMg, protocol.MetaSet: cmdlog.CmdMs,
	protocol.MetaDelete: cmdlog.CmdMd, protocol.MetaArith: cmdlog.CmdMa,
	protocol.MetaNoop: cmdlog.CmdMn, protocol.MetaDebug: cmdlog.CmdMe,
}

// captureMeta logs a meta request. Meta replies are two-letter codes; in
// quiet mode (q) the success code is left out, so silence is success, except
// for mg whose silence is a miss.
func (cs *cmdlogSession) captureMeta(req, reply []byte) {
	r, rec := &cs.meta, &cs.rec
	rec.RLen = uint32(len(reply))
	rec.Cmd = cmdlog.CmdOther
	if protocol.ParseMeta(req, r) == 0 {
		rec.NoKey, rec.Result = true, classifyLine(reply)
		cs.put()
		return
	}
	if int(r.Cmd) < len(metaCmds) {
		rec.Cmd = metaCmds[r.Cmd]
	}
	switch {
	case r.Cmd == protocol.MetaNoop || len(r.Key) == 0:
		rec.NoKey = true
	case r.Has('b') && r.Err == protocol.MetaOK: // ParseMeta checked the base64
		cs.key = r.DecodeKey(cs.key[:0])
		rec.Key = cs.key
	default:
		rec.Key = r.Key
	}
	if r.Has('T') {
		rec.TTL = int64(r.TTL)
	}
	if r.Cmd == protocol.MetaSet {
		rec.Flags = r.ClientFlags
		rec.VLen = uint32(max(r.DataLen, 0))
	}
	code := reply
	if len(code) > 2 {
		code = code[:2]
	}
	switch string(code) {
	case "VA":
		rec.Result = cmdlog.ResHit
		if r.Cmd == protocol.MetaArith {
			rec.Result = cmdlog.ResOK
		} else {
			rec.VLen, rec.Flags = metaVA(reply)
		}
	case "HD":
		switch r.Cmd {
		case protocol.MetaGet:
			rec.Result = cmdlog.ResHit
			_, rec.Flags = metaVA(reply)
		case protocol.MetaSet:
			rec.Result = cmdlog.ResStored
		case protocol.MetaDelete:
			rec.Result = cmdlog.ResDeleted
		default:
			rec.Result = cmdlog.ResOK
		}
	case "EN":
		rec.Result = cmdlog.ResMiss
	case "NS":
		rec.Result = cmdlog.ResNotStored
	case "EX":
		rec.Result = cmdlog.ResExists
	case "NF":
		rec.Result = cmdlog.ResNotFound
	case "ME":
		rec.Result = cmdlog.ResHit
	case "MN":
		rec.Result = cmdlog.ResOK
	case "":
		switch r.Cmd {
		case protocol.MetaGet:
			rec.Result = cmdlog.ResMiss
		case protocol.MetaSet:
			rec.Result = cmdlog.ResStored
		case protocol.MetaDelete:
			rec.Result = cmdlog.ResDeleted
		}
	default:
		rec.Result = classifyLine(reply)
	}
	cs.put()
}

// metaVA reads the size of "VA <size> ..." and an f<flags> return flag.
func metaVA(reply []byte) (vlen, flags uint32) {
	nl := bytes.IndexByte(reply, '\n')
	if nl < 0 {
		return 0, 0
	}
	var arr [24][]byte
	f := tokens(arr[:0], reply[:nl])
	for i, t := range f {
		switch {
		case i == 1 && string(f[0]) == "VA":
			v, _ := atou(t)
			vlen = uint32(v)
		case i > 0 && len(t) > 1 && t[0] == 'f':
			v, _ := atou(t[1:])
			flags = uint32(v)
		}
	}
	return vlen, flags
}

// captureBinary logs a binary request from its header, extras and key, and
// the status of its response. Quiet commands answer nothing on success, so
// an empty reply is a success, or a miss for the quiet gets.
func (cs *cmdlogSession) captureBinary(req, reply []byte) {
	r, rec := &cs.bin, &cs.rec
	rec.RLen = uint32(len(reply))
	if n, err := protocol.ParseBinaryPrefix(req, r); n == 0 || err != nil {
		rec.Cmd, rec.NoKey, rec.Result = cmdlog.CmdOther, true, cmdlog.ResError
		cs.put()
		return
	}
	op := r.Opcode
	rec.Cmd = cmdlog.BinCmd(op)
	rec.Key = r.Key
	rec.NoKey = len(r.Key) == 0 && (!binKeyed(op) || rec.Cmd == cmdlog.CmdOther)
	ext := r.Extras
	switch op {
	case protocol.BinSet, protocol.BinSetQ, protocol.BinAdd, protocol.BinAddQ,
		protocol.BinReplace, protocol.BinReplaceQ:
		if len(ext) == 8 {
			rec.Flags = binary.BigEndian.Uint32(ext)
			rec.TTL = int64(binary.BigEndian.Uint32(ext[4:]))
		}
		rec.VLen = uint32(max(r.ValueLen(), 0))
	case protocol.BinAppend, protocol.BinAppendQ, protocol.BinPrepend, protocol.BinPrependQ:
		rec.VLen = uint32(max(r.ValueLen(), 0))
	case protocol.BinTouch, protocol.BinGAT, protocol.BinGATQ, protocol.BinGATK, protocol.BinGATKQ:
		if len(ext) == 4 {
			rec.TTL = int64(binary.BigEndian.Uint32(ext))
		}
	}
	var h protocol.BinHeader
	if !protocol.ParseBinHeader(reply, &h) {
		rec.Result = binQuietResult(op)
		cs.put()
		return
	}
	switch h.VBucket {
	case protocol.BinStatusOK:
		rec.Result = binOKResult(op)
		if rec.Result == cmdlog.ResHit {
			rec.VLen = uint32(max(h.ValueLen(), 0))
			if h.ExtLen == 4 && len(reply) >= protocol.BinHeaderLen+4 {
				rec.Flags = binary.BigEndian.Uint32(reply[protocol.BinHeaderLen:])
			}
		}
	case protocol.BinStatusNotFound:
		rec.Result = cmdlog.ResNotFound
		if binOKResult(op) == cmdlog.ResHit {
			rec.Result = cmdlog.ResMiss
		}
	case protocol.BinStatusExists:
		rec.Result = cmdlog.ResExists
	case protocol.BinStatusNotStored:
		rec.Result = cmdlog.ResNotStored
	default:
		rec.Result = cmdlog.ResError
	}
	cs.put()
}

// binKeyed reports whether opcode op takes a key (an empty one is then
// logged as such rather than as "-").
func binKeyed(op byte) bool {
	switch op {
	case protocol.BinNoop, protocol.BinVersion, protocol.BinQuit, protocol.BinQuitQ,
		protocol.BinFlush, protocol.BinFlushQ, protocol.BinStat, protocol.BinVerbosity,
		protocol.BinSASLList, protocol.BinSASLAuth, protocol.BinSASLStep:
		return false
	}
	return true
}

// binOKResult is the result of a success status for opcode op.
func binOKResult(op byte) cmdlog.Result {
	switch op {
	case protocol.BinGet, protocol.BinGetQ, protocol.BinGetK, protocol.BinGetKQ,
		protocol.BinGAT, protocol.BinGATQ, protocol.BinGATK, protocol.BinGATKQ:
		return cmdlog.ResHit
	case protocol.BinSet, protocol.BinSetQ, protocol.BinAdd, protocol.BinAddQ,
		protocol.BinReplace, protocol.BinReplaceQ, protocol.BinAppend, protocol.BinAppendQ,
		protocol.BinPrepend, protocol.BinPrependQ:
		return cmdlog.ResStored
	case protocol.BinDelete, protocol.BinDeleteQ:
		return cmdlog.ResDeleted
	case protocol.BinTouch:
		return cmdlog.ResTouched
	}
	return cmdlog.ResOK
}

// binQuietResult is the result of a request that got no reply: a quiet
// get's miss, or any other quiet command's success.
func binQuietResult(op byte) cmdlog.Result {
	if r := binOKResult(op); r != cmdlog.ResHit {
		return r
	}
	return cmdlog.ResMiss
}
