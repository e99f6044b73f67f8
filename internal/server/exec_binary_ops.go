package server

// The binary protocol's commands, each one call to cache.Do. The rules they
// follow, and why, are in exec_binary.go's file comment.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

func (s *session) binGet(r *protocol.BinRequest, withKey, quiet bool) {
	hit := false
	s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
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
	_, err := s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			s.binLookup(l)
			return it, 0
		}
		hit = true
		it.Exptime = exp
		s.binItem(r, &it, withKey, withValue)
		return it, cache.OpMeta | cache.OpBump
	})
	if err != nil {
		s.binJournalError(r, err)
		return
	}
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
	cas, err := s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
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
	if errors.Is(err, errJournal) {
		s.binJournalError(r, err)
		return
	}
	if err != nil {
		s.binStoreFailed(r, err, op == protocol.BinSet, "Out of memory allocating item")
		return
	}
	s.stats.Inc(stats.CmdSet)
	if status != protocol.BinStatusOK {
		s.binError(r.Opcode, status, r.Opaque)
		return
	}
	s.binOK(r, quiet, s.visibleCAS(cas))
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
	s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		return it, cache.OpDelete
	})
}

// binConcat runs Append and Prepend: the old item keeps its flags and
// expiration; a CAS in the header must match.
func (s *session) binConcat(r *protocol.BinRequest, isAppend, quiet bool) {
	status := protocol.BinStatusOK
	reqCAS := s.binStoreCAS(r.CAS)
	cas, err := s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
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
	if errors.Is(err, errJournal) {
		s.binJournalError(r, err)
		return
	}
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
	s.binOK(r, quiet, s.visibleCAS(cas))
}

func (s *session) binDeleteCmd(r *protocol.BinRequest, quiet bool) {
	status := protocol.BinStatusOK
	_, err := s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		s.binLookup(l)
		if l != cache.Hit {
			status = protocol.BinStatusNotFound
			if r.CAS != 0 {
				return it, 0
			}
			return it, s.deleteUnknown()
		}
		if r.CAS != 0 && s.visibleCAS(it.CAS) != r.CAS {
			status = protocol.BinStatusExists
			return it, 0
		}
		return it, cache.OpDelete
	})
	if err != nil {
		s.binJournalError(r, err)
		return
	}
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
	cas, err := s.do(r.Key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
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
		if r.CAS != 0 && s.visibleCAS(it.CAS) != r.CAS {
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
	if errors.Is(err, errJournal) {
		s.binJournalError(r, err)
		return
	}
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
		s.out = protocol.AppendBinResponse(s.out, r.Opcode, protocol.BinStatusOK, r.Opaque, s.visibleCAS(cas), nil, nil, num[:])
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
