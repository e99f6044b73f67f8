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
	"encoding/binary"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

// binMaxRelExptime is memcached's REALTIME_MAXDELTA: expiration times up to
// 30 days are relative, larger ones are absolute unix times.
const binMaxRelExptime = 60 * 60 * 24 * 30

// binNoCreateExptime is the incr/decr expiration meaning "do not create".
const binNoCreateExptime = 0xffffffff

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
		if s.itemTooLarge(key, vlen, flags) {
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
		if err := s.flushAll(at); err != nil {
			s.binJournalError(&r, err)
			return step{n: prefix}
		}
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
	s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, s.visibleCAS(it.CAS), ext[:], key, value)
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
