package server

// The binary protocol executor. It answers every opcode the way memcached
// 1.6.18's proto_bin.c does, byte for byte, including its quirks, because
// the binary clients still in use were tested against it:
//
//   - A request whose lengths do not fit its opcode is answered "Invalid
//     arguments" and the connection is closed; extras+key longer than the
//     body is answered "Unknown command" and closed.
//   - An unknown opcode (Verbosity among them: 1.6 no longer dispatches it)
//     is answered "Unknown command" and then memcached discards bodylen
//     bytes after the extras and key it has already consumed, so it eats
//     extlen+keylen bytes of whatever follows. Petrel does the same.
//   - Stat and Touch/GAT do not check the body length: a value sent with
//     them is left in the stream and parsed as the next request.
//   - A value too large to store is answered at once and swallowed, never
//     buffered; a too-large Set also deletes the old item, as memcached does
//     so that a stale value does not outlive a failed overwrite.
//   - Quiet variants suppress success replies and GetQ/GATQ misses; errors
//     are always sent. Hits of GetQ/GATQ are sent (the whole point of them).
//
// docs/protocol-binary.md has the table of opcodes.

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

// binMaxRelExptime is memcached's REALTIME_MAXDELTA: expiration times up to
// 30 days are relative, larger ones are absolute unix times.
const binMaxRelExptime = 60 * 60 * 24 * 30

// binItemHeader is the size of memcached's item header with CAS (48 bytes
// plus 8), used to decide "too large" exactly where memcached does.
const (
	binItemHeader      = 48
	binItemHeaderCAS   = 8
	binNoCreateExptime = 0xffffffff // incr/decr expiration meaning "do not create"
)

// execBinary runs one binary-protocol request; buf[0] is 0x80.
func (s *session) execBinary(buf []byte) step {
	var r protocol.BinRequest
	if !protocol.ParseBinHeader(buf, &r.BinHeader) {
		return step{need: protocol.BinHeaderLen}
	}
	if r.Magic != protocol.BinReqMagic {
		return step{n: len(buf), close: true} // framing is lost: memcached closes
	}
	// Both checks below are made by memcached once extras and key have
	// arrived; they depend only on the header, and both close the
	// connection, so there is no point waiting for (up to 64 KiB of) key.
	if r.ValueLen() < 0 {
		s.binError(r.Opcode, protocol.BinStatusUnknown, r.Opaque)
		return step{n: len(buf), close: true}
	}
	if r.KeyLen > protocol.BinMaxKeyLen {
		s.binError(r.Opcode, protocol.BinStatusInvalid, r.Opaque)
		return step{n: len(buf), close: true}
	}
	prefix, err := protocol.ParseBinaryPrefix(buf, &r)
	if err != nil || prefix == 0 {
		return step{need: r.PrefixLen()}
	}
	op, quiet := binBase(r.Opcode)
	ext, key, body := int(r.ExtLen), int(r.KeyLen), int(r.BodyLen)
	invalid := func() step {
		s.binError(r.Opcode, protocol.BinStatusInvalid, r.Opaque)
		return step{n: prefix, close: true}
	}

	switch op {
	case protocol.BinGet, protocol.BinGetK:
		if ext != 0 || body != key || key == 0 {
			return invalid()
		}
		s.binGet(&r, op == protocol.BinGetK, quiet)
		return step{n: prefix}

	case protocol.BinTouch, protocol.BinGAT, protocol.BinGATK:
		if ext != 4 || key == 0 {
			return invalid()
		}
		s.binTouch(&r, op, quiet)
		return step{n: prefix}

	case protocol.BinSet, protocol.BinAdd, protocol.BinReplace,
		protocol.BinAppend, protocol.BinPrepend:
		update := op == protocol.BinSet || op == protocol.BinAdd || op == protocol.BinReplace
		if key == 0 || (update && ext != 8) || (!update && ext != 0) {
			return invalid()
		}
		var flags uint32
		if update {
			flags = binary.BigEndian.Uint32(r.Extras)
		}
		vlen := r.ValueLen()
		if s.binTooLarge(key, flags, vlen) {
			s.stats.Inc(stats.StoreTooLarge)
			s.binError(r.Opcode, protocol.BinStatusTooLarge, r.Opaque)
			if op == protocol.BinSet {
				s.binDelete(r.Key)
			}
			return step{n: prefix, swallow: vlen}
		}
		if len(buf) < r.Len() {
			return step{need: r.Len()}
		}
		r.Value = buf[prefix:r.Len()]
		if update {
			s.binUpdate(&r, op, quiet)
		} else {
			s.binConcat(&r, op == protocol.BinAppend, quiet)
		}
		return step{n: r.Len()}

	case protocol.BinDelete:
		if ext != 0 || body != key || key == 0 {
			return invalid()
		}
		s.binDeleteCmd(&r, quiet)
		return step{n: prefix}

	case protocol.BinIncrement, protocol.BinDecrement:
		if key == 0 || ext != 20 || body != key+ext {
			return invalid()
		}
		s.binArith(&r, op == protocol.BinIncrement, quiet)
		return step{n: prefix}

	case protocol.BinFlush:
		if key != 0 || body != ext || (ext != 0 && ext != 4) {
			return invalid()
		}
		at := s.now
		if ext == 4 {
			if e := binary.BigEndian.Uint32(r.Extras); e > 0 {
				at = binExptime(e, s.now)
			}
		}
		s.cache.FlushAll(s.now, at)
		s.stats.Inc(stats.CmdFlush)
		s.binOK(&r, quiet, 0)
		return step{n: prefix}

	case protocol.BinNoop, protocol.BinVersion, protocol.BinQuit:
		if ext != 0 || key != 0 || body != 0 {
			return invalid()
		}
		switch op {
		case protocol.BinNoop:
			s.binOK(&r, false, 0)
		case protocol.BinVersion:
			s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, 0, nil, nil, nil)
			s.binFixBody(len(Version))
			s.out = append(s.out, Version...)
		case protocol.BinQuit:
			s.binOK(&r, quiet, 0)
			return step{n: prefix, close: !s.udp}
		}
		return step{n: prefix}

	case protocol.BinStat:
		if ext != 0 {
			return invalid()
		}
		s.binStat(&r)
		return step{n: prefix}

	case protocol.BinSASLList:
		// SASL is off: memcached answers as for an unknown command.
		if ext != 0 || key != 0 || body != 0 {
			return invalid()
		}
		s.binError(r.Opcode, protocol.BinStatusUnknown, r.Opaque)
		return step{n: prefix}

	case protocol.BinSASLAuth, protocol.BinSASLStep:
		if ext != 0 || key == 0 {
			return invalid()
		}
		s.binError(r.Opcode, protocol.BinStatusUnknown, r.Opaque)
		return step{n: prefix, swallow: r.ValueLen()}
	}
	// Unknown opcode: memcached swallows bodylen bytes after the prefix it
	// has already consumed (see the file comment).
	s.binError(r.Opcode, protocol.BinStatusUnknown, r.Opaque)
	return step{n: prefix, swallow: body}
}

// binBase maps a quiet opcode to its loud twin.
func binBase(op uint8) (base uint8, quiet bool) {
	switch op {
	case protocol.BinGetQ:
		return protocol.BinGet, true
	case protocol.BinGetKQ:
		return protocol.BinGetK, true
	case protocol.BinSetQ:
		return protocol.BinSet, true
	case protocol.BinAddQ:
		return protocol.BinAdd, true
	case protocol.BinReplaceQ:
		return protocol.BinReplace, true
	case protocol.BinDeleteQ:
		return protocol.BinDelete, true
	case protocol.BinIncrementQ:
		return protocol.BinIncrement, true
	case protocol.BinDecrementQ:
		return protocol.BinDecrement, true
	case protocol.BinQuitQ:
		return protocol.BinQuit, true
	case protocol.BinFlushQ:
		return protocol.BinFlush, true
	case protocol.BinAppendQ:
		return protocol.BinAppend, true
	case protocol.BinPrependQ:
		return protocol.BinPrepend, true
	case protocol.BinGATQ:
		return protocol.BinGAT, true
	case protocol.BinGATKQ:
		return protocol.BinGATK, true
	}
	return op, false
}

// binExptime turns a wire expiration into absolute unix seconds (0 = never),
// as memcached's realtime(): up to 30 days relative, beyond that absolute.
func binExptime(e uint32, now int64) int64 {
	switch {
	case e == 0:
		return 0
	case e <= binMaxRelExptime:
		return now + int64(e)
	}
	return int64(e)
}

// binTooLarge reports whether memcached would refuse to allocate the item:
// header (+8 with CAS) + key + NUL + value + CRLF (+4 for nonzero flags)
// over the item size limit.
func (s *session) binTooLarge(nkey int, flags uint32, vlen int) bool {
	size := binItemHeader + nkey + 1 + vlen + 2
	if !s.srv.cfg.NoCAS {
		size += binItemHeaderCAS
	}
	if flags != 0 {
		size += 4
	}
	limit := s.srv.cfg.MaxItemSize
	if limit <= 0 {
		limit = 1 << 20
	}
	return size > limit
}

// binCAS is the CAS a client sees: 0 when CAS is disabled (-C).
func (s *session) binCAS(c uint64) uint64 {
	if s.srv.cfg.NoCAS {
		return 0
	}
	return c
}

// binStoreCAS is the CAS a store compares against. memcached stores the
// request's CAS in the new item and compares it with the old one; with CAS
// disabled the item has nowhere to keep it, so a store ignores it (while
// Delete and Incr, which compare with the old item's 0, refuse).
func (s *session) binStoreCAS(c uint64) uint64 {
	if s.srv.cfg.NoCAS {
		return 0
	}
	return c
}

// binLookup counts the misses memcached's do_item_get counts on every path.
func (s *session) binLookup(l cache.Lookup) {
	switch l {
	case cache.Expired:
		s.stats.Inc(stats.GetExpired)
	case cache.Flushed:
		s.stats.Inc(stats.GetFlushed)
	}
}

// binOK appends an empty success reply unless the request was quiet.
func (s *session) binOK(r *protocol.BinRequest, quiet bool, cas uint64) {
	if !quiet {
		s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, cas, nil, nil, nil)
	}
}

// binError appends an error reply; errors are sent even for quiet requests.
func (s *session) binError(opcode uint8, status uint16, opaque uint32) {
	if status == protocol.BinStatusInvalid || status == protocol.BinStatusUnknown {
		s.stats.Inc(stats.ProtocolErrors)
	}
	s.out = protocol.AppendBinError(s.out, opcode, status, opaque)
}

// binFixBody sets the body length of the reply header that ends s.out,
// for replies whose body is appended piecewise.
func (s *session) binFixBody(n int) {
	h := s.out[len(s.out)-protocol.BinHeaderLen:]
	binary.BigEndian.PutUint32(h[8:], uint32(n))
}

// binItem appends a hit reply: flags in the extras, then the key (GetK,
// GATK) and the value (all but Touch).
func (s *session) binItem(r *protocol.BinRequest, it *cache.Item, withKey, withValue bool) {
	var ext [4]byte
	binary.BigEndian.PutUint32(ext[:], it.Flags)
	var key, value []byte
	if withKey {
		key = r.Key
	}
	if withValue {
		value = it.Value
	}
	s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, s.binCAS(it.CAS), ext[:], key, value)
}

// binMiss appends a get/GAT miss: GetK and GATK return the key and no
// message, the others "Not found"; quiet variants say nothing.
func (s *session) binMiss(r *protocol.BinRequest, withKey, quiet bool) {
	switch {
	case quiet:
	case withKey:
		s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusNotFound, r.Opaque, 0, nil, r.Key, nil)
	default:
		s.binError(r.Opcode, protocol.BinStatusNotFound, r.Opaque)
	}
}

func (s *session) binGet(r *protocol.BinRequest, withKey, quiet bool) {
	hit := false
	s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			s.binLookup(l)
			return it, 0
		}
		hit = true
		s.binItem(r, &it, withKey, true)
		return it, cache.OpBump
	})
	s.stats.Inc(stats.CmdGet)
	if hit {
		s.stats.Inc(stats.GetHits)
		return
	}
	s.stats.Inc(stats.GetMisses)
	s.binMiss(r, withKey, quiet)
}

// binTouch runs Touch, GAT and GATK. memcached counts them as touches
// only (cmd_touch, touch_hits/misses), not as gets.
func (s *session) binTouch(r *protocol.BinRequest, op uint8, quiet bool) {
	exp := binExptime(binary.BigEndian.Uint32(r.Extras), s.now)
	withKey, withValue := op == protocol.BinGATK, op != protocol.BinTouch
	hit := false
	s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			s.binLookup(l)
			return it, 0
		}
		hit = true
		it.Exptime = exp
		s.binItem(r, &it, withKey, withValue)
		return it, cache.OpMeta | cache.OpBump
	})
	s.stats.Inc(stats.CmdTouch)
	if hit {
		s.stats.Inc(stats.TouchHits)
		return
	}
	s.stats.Inc(stats.TouchMisses)
	s.binMiss(r, withKey, quiet)
}

// binUpdate runs Set, Add and Replace. A nonzero CAS in the header turns
// any of them into a compare-and-swap, as in memcached (NREAD_CAS).
func (s *session) binUpdate(r *protocol.BinRequest, op uint8, quiet bool) {
	flags := binary.BigEndian.Uint32(r.Extras)
	exp := binExptime(binary.BigEndian.Uint32(r.Extras[4:]), s.now)
	status := protocol.BinStatusOK
	reqCAS := s.binStoreCAS(r.CAS)
	cas, err := s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		s.binLookup(l)
		switch {
		case reqCAS != 0:
			if l != cache.Hit {
				s.stats.Inc(stats.CasMisses)
				status = protocol.BinStatusNotFound
				return it, 0
			}
			if it.CAS != reqCAS {
				s.stats.Inc(stats.CasBadval)
				status = protocol.BinStatusExists
				return it, 0
			}
			s.stats.Inc(stats.CasHits)
		case op == protocol.BinAdd && l == cache.Hit:
			status = protocol.BinStatusExists
			return it, 0
		case op == protocol.BinReplace && l != cache.Hit:
			status = protocol.BinStatusNotFound
			return it, 0
		}
		return cache.Item{Key: r.Key, Value: r.Value, Flags: flags, Exptime: exp}, cache.OpPut
	})
	if err != nil {
		s.binStoreFailed(r, err, op == protocol.BinSet, "Out of memory allocating item")
		return
	}
	s.stats.Inc(stats.CmdSet)
	if status != protocol.BinStatusOK {
		s.binError(r.Opcode, status, r.Opaque)
		return
	}
	s.binOK(r, quiet, s.binCAS(cas))
}

// binStoreFailed answers a store the cache refused. memcached refuses
// before reading the value (and deletes the old item on Set); Petrel's
// engine may refuse after, so the same answer is given here.
func (s *session) binStoreFailed(r *protocol.BinRequest, err error, isSet bool, oom string) {
	if err == cache.ErrTooLarge {
		s.stats.Inc(stats.StoreTooLarge)
		s.binError(r.Opcode, protocol.BinStatusTooLarge, r.Opaque)
	} else {
		s.stats.Inc(stats.StoreNoMemory)
		s.out = protocol.AppendBinErrorText(s.out, r.Opcode, protocol.BinStatusNoMemory, r.Opaque, oom)
	}
	if isSet {
		s.binDelete(r.Key)
	}
}

// binDelete removes key without a reply.
func (s *session) binDelete(key []byte) {
	s.cache.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		return it, cache.OpDelete
	})
}

// binConcat runs Append and Prepend: the old item keeps its flags and
// expiration; a CAS in the header must match.
func (s *session) binConcat(r *protocol.BinRequest, isAppend, quiet bool) {
	status := protocol.BinStatusOK
	reqCAS := s.binStoreCAS(r.CAS)
	cas, err := s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		s.binLookup(l)
		if l != cache.Hit {
			status = protocol.BinStatusNotStored
			return it, 0
		}
		if reqCAS != 0 && it.CAS != reqCAS {
			status = protocol.BinStatusExists
			return it, 0
		}
		v := s.scratch[:0]
		if isAppend {
			v = append(append(v, it.Value...), r.Value...)
		} else {
			v = append(append(v, r.Value...), it.Value...)
		}
		s.scratch = v
		return cache.Item{Key: r.Key, Value: v, Flags: it.Flags, Exptime: it.Exptime}, cache.OpPut
	})
	s.stats.Inc(stats.CmdSet)
	if err != nil {
		// memcached fails the combined allocation inside the store:
		// append and prepend then answer "Not stored."
		if err == cache.ErrTooLarge {
			s.stats.Inc(stats.StoreTooLarge)
		} else {
			s.stats.Inc(stats.StoreNoMemory)
		}
		status = protocol.BinStatusNotStored
	}
	if status != protocol.BinStatusOK {
		s.binError(r.Opcode, status, r.Opaque)
		return
	}
	s.binOK(r, quiet, s.binCAS(cas))
}

func (s *session) binDeleteCmd(r *protocol.BinRequest, quiet bool) {
	status := protocol.BinStatusOK
	s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		s.binLookup(l)
		if l != cache.Hit {
			status = protocol.BinStatusNotFound
			return it, 0
		}
		if r.CAS != 0 && s.binCAS(it.CAS) != r.CAS {
			status = protocol.BinStatusExists
			return it, 0
		}
		return it, cache.OpDelete
	})
	switch status {
	case protocol.BinStatusOK:
		s.stats.Inc(stats.DeleteHits)
		s.binOK(r, quiet, 0)
	case protocol.BinStatusNotFound:
		s.stats.Inc(stats.DeleteMisses)
		s.binError(r.Opcode, status, r.Opaque)
	default:
		s.binError(r.Opcode, status, r.Opaque)
	}
}

// binArith runs Increment and Decrement. Extras are delta (8), initial (8)
// and expiration (4); a miss creates the item with the initial value unless
// the expiration is 0xffffffff. Like memcached, a result shorter than the
// old value is padded with spaces to the old length (memcached rewrites the
// digits in place).
func (s *session) binArith(r *protocol.BinRequest, incr, quiet bool) {
	delta := binary.BigEndian.Uint64(r.Extras)
	initial := binary.BigEndian.Uint64(r.Extras[8:])
	expRaw := binary.BigEndian.Uint32(r.Extras[16:])
	status := protocol.BinStatusOK
	created := false
	var result uint64
	cas, err := s.cache.Do(r.Key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		s.binLookup(l)
		if l != cache.Hit {
			if expRaw == binNoCreateExptime {
				status = protocol.BinStatusNotFound
				return it, 0
			}
			created, result = true, initial
			s.scratch = strconv.AppendUint(s.scratch[:0], initial, 10)
			return cache.Item{Key: r.Key, Value: s.scratch, Exptime: binExptime(expRaw, s.now)}, cache.OpPut
		}
		if len(it.Value) == 0 {
			status = protocol.BinStatusNonNumeric
			return it, 0
		}
		if r.CAS != 0 && s.binCAS(it.CAS) != r.CAS {
			status = protocol.BinStatusExists
			return it, 0
		}
		v, ok := binParseUint(it.Value)
		if !ok {
			status = protocol.BinStatusNonNumeric
			return it, 0
		}
		switch {
		case incr:
			v += delta // wraps at 2^64, as memcached's does
		case delta > v:
			v = 0
		default:
			v -= delta
		}
		result = v
		b := strconv.AppendUint(s.scratch[:0], v, 10)
		for len(b) < len(it.Value) {
			b = append(b, ' ')
		}
		s.scratch = b
		return cache.Item{Key: r.Key, Value: b, Flags: it.Flags, Exptime: it.Exptime}, cache.OpPut
	})
	if err != nil {
		msg := "Out of memory incrementing value"
		if created {
			msg = "Out of memory allocating new item"
		}
		s.stats.Inc(stats.StoreNoMemory)
		s.out = protocol.AppendBinErrorText(s.out, r.Opcode, protocol.BinStatusNoMemory, r.Opaque, msg)
		return
	}
	switch {
	case status == protocol.BinStatusNotFound:
		// Only the do-not-create miss counts: memcached's create path
		// bumps neither hits nor misses.
		if incr {
			s.stats.Inc(stats.IncrMisses)
		} else {
			s.stats.Inc(stats.DecrMisses)
		}
	case status == protocol.BinStatusOK && !created:
		if incr {
			s.stats.Inc(stats.IncrHits)
		} else {
			s.stats.Inc(stats.DecrHits)
		}
	}
	if status != protocol.BinStatusOK {
		s.binError(r.Opcode, status, r.Opaque)
		return
	}
	if !quiet {
		var num [8]byte
		binary.BigEndian.PutUint64(num[:], result)
		s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, s.binCAS(cas), nil, nil, num[:])
	}
}

// binParseUint parses a stored value as memcached's safe_strtoull does on
// the item data (which ends in "\r\n"): C strtoull (leading spaces, an
// optional sign, decimal digits) that must stop at a space or the end, with
// negative numbers refused when they would look negative as signed.
func binParseUint(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && binIsSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
		i++
	}
	if i == start {
		return 0, false // no digits: strtoull consumed nothing
	}
	// The data is followed by "\r\n", so the end counts as a space; a NUL
	// ends the C string.
	if i < len(b) && !binIsSpace(b[i]) && b[i] != 0 {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
}

func binIsSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// binStat answers Stat. The key selects the group with memcached's
// prefix matching ("reset…", "settings…", "detail …"); every group ends
// with an empty packet.
func (s *session) binStat(r *protocol.BinRequest) {
	emit := func(name, value string) {
		s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, 0, nil, nil, nil)
		h := s.out[len(s.out)-protocol.BinHeaderLen:]
		binary.BigEndian.PutUint16(h[2:], uint16(len(name)))
		binary.BigEndian.PutUint32(h[8:], uint32(len(name)+len(value)))
		s.out = append(append(s.out, name...), value...)
	}
	key := r.Key
	switch {
	case len(key) == 0:
		s.statsPairs("", emit)
	case bytes.HasPrefix(key, []byte("reset")):
		s.srv.resetStats()
	case bytes.HasPrefix(key, []byte("settings")):
		s.statsPairs("settings", emit)
	case bytes.HasPrefix(key, []byte("detail")):
		switch sub := key[len("detail"):]; {
		case bytes.HasPrefix(sub, []byte(" dump")):
			emit("detailed", "END\r\n") // Petrel keeps no per-prefix stats
		case bytes.HasPrefix(sub, []byte(" on")), bytes.HasPrefix(sub, []byte(" off")):
		default:
			s.binError(r.Opcode, protocol.BinStatusNotFound, r.Opaque)
			return
		}
	default:
		// memcached's binary Stat knows no "conns" group.
		if string(key) == "conns" || !s.statsPairs(string(key), emit) {
			s.binError(r.Opcode, protocol.BinStatusNotFound, r.Opaque)
			return
		}
	}
	s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, 0, nil, nil, nil)
}
