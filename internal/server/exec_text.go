package server

// The classic text protocol executor: parse one request with
// protocol.TextRequest, run it against the memory tier, and append
// memcached 1.6.18's reply to s.out. Meta commands are handed to execMeta.
// Replies and counters follow memcached's proto_text.c; where memcached's
// behaviour is odd (decr padding with spaces, a failed set deleting the old
// value) it is kept, because clients have been written against it.

import (
	"errors"
	"strconv"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

// realtimeMaxDelta is memcached's REALTIME_MAXDELTA: exptimes up to 30 days
// are relative, larger ones are unix times.
const realtimeMaxDelta = 60 * 60 * 24 * 30

// execText runs one classic text or meta request (meta lines are handed to
// execMeta).
func (s *session) execText(buf []byte) step {
	r := &s.txt
	n := r.Parse(buf)
	if n == 0 {
		return step{close: r.Err == protocol.TextErrLineTooLong}
	}
	if r.Cmd == protocol.TextMeta {
		st := s.execMeta(buf[r.Skip:])
		if st.n > 0 {
			st.n += r.Skip
		} else if st.need > 0 {
			st.need += r.Skip
		}
		return st
	}
	mark := len(s.out)
	st := step{n: n}
	if r.Err != protocol.TextOK {
		if r.Err == protocol.TextErrUnknown && s.cmdlogCommand(buf[:n]) {
			return st // Petrel's `cmdlog` extension (cmdlog.go)
		}
		s.stats.Inc(stats.ProtocolErrors)
		if r.Cmd == protocol.TextFlushAll {
			s.stats.Inc(stats.CmdFlush) // memcached counts it before checking the delay
		}
		s.out = protocol.AppendLine(s.out, r.Err.Reply())
		if r.NoReply {
			s.out = s.out[:mark]
		}
		return st
	}
	switch r.Cmd {
	case protocol.TextGet, protocol.TextGets, protocol.TextGat, protocol.TextGats:
		s.textGet(r)
	case protocol.TextSet, protocol.TextAdd, protocol.TextReplace,
		protocol.TextAppend, protocol.TextPrepend, protocol.TextCas:
		st = s.textStore(r, buf)
	case protocol.TextDelete:
		s.textDelete(r)
	case protocol.TextIncr, protocol.TextDecr:
		s.textArith(r)
	case protocol.TextTouch:
		s.textTouch(r)
	case protocol.TextFlushAll:
		s.stats.Inc(stats.CmdFlush)
		at := s.now
		if r.Exptime > 0 {
			// memcached sets oldest_live to realtime(delay)-1: a delayed
			// flush bites a second early and takes that second's items.
			at = s.absExptime(r.Exptime) - 1
		}
		if err := s.flushAll(at); err != nil {
			s.out = protocol.AppendLine(s.out, serverError(err))
			break
		}
		s.out = append(s.out, protocol.ReplyOK...)
	case protocol.TextVersion:
		s.out = protocol.AppendLine(append(s.out, "VERSION "...), Version)
	case protocol.TextVerbosity:
		s.srv.setVerbosity(int(min(r.Level, 2))) // memcached's MAX_VERBOSITY_LEVEL
		s.out = append(s.out, protocol.ReplyOK...)
	case protocol.TextQuit:
		st.close = true
	case protocol.TextShutdown:
		st.close = s.textShutdown(r)
	case protocol.TextStats:
		s.textStats(r)
	}
	if r.NoReply {
		// noreply silences errors too, as memcached's out_string does.
		s.out = s.out[:mark]
	}
	return st
}

// absExptime turns a protocol exptime into absolute unix seconds, the way
// memcached's realtime() does: 0 never expires, up to 30 days is relative to
// now, beyond that it is a unix time, and negative means already expired.
func (s *session) absExptime(e int64) int64 {
	switch {
	case e == 0:
		return 0
	case e < 0:
		return max(s.now-1, 1)
	case e > realtimeMaxDelta:
		return e
	}
	return s.now + e
}

// countGet records one key of a get-family command. gat counts only as a
// touch (cmd_touch, touch_hits/misses), as memcached does.
func (s *session) countGet(l cache.Lookup, touch bool) {
	switch {
	case touch:
		s.stats.Inc(stats.CmdTouch)
		if l == cache.Hit {
			s.stats.Inc(stats.TouchHits)
		} else {
			s.stats.Inc(stats.TouchMisses)
		}
	case l == cache.Hit:
		s.stats.Inc(stats.CmdGet)
		s.stats.Inc(stats.GetHits)
	default:
		s.stats.Inc(stats.CmdGet)
		s.stats.Inc(stats.GetMisses)
	}
	switch l {
	case cache.Expired:
		s.stats.Inc(stats.GetExpired)
	case cache.Flushed:
		s.stats.Inc(stats.GetFlushed)
	}
}

func (s *session) textGet(r *protocol.TextRequest) {
	touch := r.Cmd == protocol.TextGat || r.Cmd == protocol.TextGats
	withCAS := r.Cmd == protocol.TextGets || r.Cmd == protocol.TextGats
	exp := int64(0)
	if touch {
		exp = s.absExptime(r.Exptime)
	}
	for _, key := range r.Keys {
		var lookup cache.Lookup
		_, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			lookup = l
			if l != cache.Hit {
				return it, 0
			}
			s.out = protocol.AppendValue(s.out, key, it.Flags, it.Value, s.visibleCAS(it.CAS), withCAS)
			if touch {
				it.Exptime = exp
				return it, cache.OpMeta | cache.OpBump
			}
			return it, cache.OpBump
		})
		if err != nil {
			// Only gat can fail (its touch was not journaled): the rest
			// of the keys are abandoned, as memcached does on an error.
			s.out = protocol.AppendLine(s.out, serverError(err))
			return
		}
		s.countGet(lookup, touch)
	}
	s.out = append(s.out, protocol.ReplyEnd...)
}

func (s *session) textStore(r *protocol.TextRequest, buf []byte) step {
	key := r.Key()
	if s.itemTooLarge(len(r.Key()), r.VLen, r.Flags) {
		s.stats.Inc(stats.StoreTooLarge)
		s.out = append(s.out, protocol.ReplyTooLarge...)
		if r.Cmd == protocol.TextSet {
			s.deleteKey(key) // memcached will not leave stale data behind a failed set
		}
		return step{n: r.Line, swallow: r.VLen + 2}
	}
	data, complete, ok := r.Data(buf)
	if !complete {
		return step{need: r.Total()}
	}
	st := step{n: r.Total()}
	s.stats.Inc(stats.CmdSet)
	if !ok {
		s.stats.Inc(stats.ProtocolErrors)
		s.out = append(s.out, protocol.ReplyBadDataChunk...)
		return st
	}
	cmd, exp := r.Cmd, s.absExptime(r.Exptime)
	reply := protocol.ReplyStored
	_, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		hit := l == cache.Hit
		switch cmd {
		case protocol.TextAdd:
			if hit {
				reply = protocol.ReplyNotStored
				return it, 0
			}
		case protocol.TextReplace:
			if !hit {
				reply = protocol.ReplyNotStored
				return it, 0
			}
		case protocol.TextAppend, protocol.TextPrepend:
			if !hit {
				reply = protocol.ReplyNotStored
				return it, 0
			}
			// The old item's flags and exptime stay; only the value grows.
			if cmd == protocol.TextAppend {
				s.scratch = append(append(s.scratch[:0], it.Value...), data...)
			} else {
				s.scratch = append(append(s.scratch[:0], data...), it.Value...)
			}
			it.Value = s.scratch
			return it, cache.OpPut
		case protocol.TextCas:
			switch {
			case !hit:
				reply = protocol.ReplyNotFound
				s.stats.Inc(stats.CasMisses)
				return it, 0
			case s.srv.cfg.NoCAS || it.CAS != r.CAS: // memcached -C refuses every cas
				reply = protocol.ReplyExists
				s.stats.Inc(stats.CasBadval)
				return it, 0
			}
			s.stats.Inc(stats.CasHits)
		}
		return cache.Item{Key: key, Value: data, Flags: r.Flags, Exptime: exp}, cache.OpPut
	})
	switch {
	case err == nil:
		s.out = append(s.out, reply...)
	case errors.Is(err, errJournal):
		s.out = protocol.AppendLine(s.out, serverError(err))
	case cmd == protocol.TextAppend || cmd == protocol.TextPrepend:
		// memcached's append fails its allocation quietly.
		s.out = append(s.out, protocol.ReplyNotStored...)
	default:
		if err == cache.ErrTooLarge {
			s.stats.Inc(stats.StoreTooLarge)
			s.out = append(s.out, protocol.ReplyTooLarge...)
		} else {
			s.stats.Inc(stats.StoreNoMemory)
			s.out = append(s.out, protocol.ReplyNoMemory...)
		}
		if cmd == protocol.TextSet {
			s.deleteKey(key)
		}
	}
	return st
}

// deleteKey removes key without counting a delete.
func (s *session) deleteKey(key []byte) {
	s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		return it, cache.OpDelete
	})
}

func (s *session) textDelete(r *protocol.TextRequest) {
	hit := false
	_, err := s.do(r.Key(), func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		hit = l == cache.Hit
		if hit {
			return it, cache.OpDelete
		}
		return it, s.deleteUnknown()
	})
	if err != nil {
		s.out = protocol.AppendLine(s.out, serverError(err))
		return
	}
	if hit {
		s.stats.Inc(stats.DeleteHits)
		s.out = append(s.out, protocol.ReplyDeleted...)
	} else {
		s.stats.Inc(stats.DeleteMisses)
		s.out = append(s.out, protocol.ReplyNotFound...)
	}
}

func (s *session) textTouch(r *protocol.TextRequest) {
	s.stats.Inc(stats.CmdTouch)
	exp, hit := s.absExptime(r.Exptime), false
	_, err := s.do(r.Key(), func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		hit = l == cache.Hit
		if !hit {
			return it, 0
		}
		it.Exptime = exp
		return it, cache.OpMeta | cache.OpBump
	})
	if err != nil {
		s.out = protocol.AppendLine(s.out, serverError(err))
		return
	}
	if hit {
		s.stats.Inc(stats.TouchHits)
		s.out = append(s.out, protocol.ReplyTouched...)
	} else {
		s.stats.Inc(stats.TouchMisses)
		s.out = append(s.out, protocol.ReplyNotFound...)
	}
}

// textArith is incr/decr. Like memcached's do_add_delta, incr wraps at 2^64,
// decr stops at 0, and a result no longer than the old value overwrites it
// padded with spaces (so "100" decremented by 1 reads "99 ").
func (s *session) textArith(r *protocol.TextRequest) {
	incr := r.Cmd == protocol.TextIncr
	hits, misses := stats.DecrHits, stats.DecrMisses
	if incr {
		hits, misses = stats.IncrHits, stats.IncrMisses
	}
	var res uint64
	found, numeric := false, false
	_, err := s.do(r.Key(), func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			return it, 0
		}
		found = true
		v, ok := protocol.ParseCounter(it.Value)
		if !ok {
			return it, 0
		}
		numeric = true
		switch {
		case incr:
			v += r.Delta
		case r.Delta > v:
			v = 0
		default:
			v -= r.Delta
		}
		res = v
		old := len(it.Value)
		s.scratch = strconv.AppendUint(s.scratch[:0], v, 10)
		for len(s.scratch) < old {
			s.scratch = append(s.scratch, ' ')
		}
		it.Value = s.scratch
		return it, cache.OpPut
	})
	switch {
	case errors.Is(err, errJournal):
		s.out = protocol.AppendLine(s.out, serverError(err))
	case !found:
		s.stats.Inc(misses)
		s.out = append(s.out, protocol.ReplyNotFound...)
	case !numeric:
		s.out = append(s.out, protocol.ReplyNonNumeric...)
	case err != nil:
		s.out = protocol.AppendLine(s.out, "SERVER_ERROR out of memory")
	default:
		s.stats.Inc(hits)
		s.out = protocol.AppendUintLine(s.out, res)
	}
}

// textShutdown answers `shutdown [graceful]` and reports whether to close.
func (s *session) textShutdown(r *protocol.TextRequest) bool {
	valid := len(r.Keys) == 0 || len(r.Keys) == 1 && string(r.Keys[0]) == "graceful"
	if !s.srv.cfg.EnableShutdown {
		s.out = protocol.AppendLine(s.out, "ERROR: shutdown not enabled")
		return false
	}
	if !valid {
		s.out = protocol.AppendLine(s.out, "CLIENT_ERROR invalid shutdown mode")
		return false
	}
	return s.srv.shutdownRequested()
}

// textStats answers `stats [section]`. Sections Petrel has no equivalent of
// get the reply memcached gives when the feature is off or empty.
func (s *session) textStats(r *protocol.TextRequest) {
	section := ""
	if len(r.Keys) > 0 {
		section = string(r.Keys[0])
	}
	switch section {
	case "reset":
		s.srv.resetStats()
		s.out = append(s.out, protocol.ReplyReset...)
		return
	case "detail":
		sub := ""
		if len(r.Keys) > 1 {
			sub = string(r.Keys[1])
		}
		switch sub {
		case "on", "off":
			s.out = append(s.out, protocol.ReplyOK...)
		case "dump":
			s.out = append(s.out, protocol.ReplyEnd...)
		default:
			s.out = protocol.AppendLine(s.out, "CLIENT_ERROR usage: stats detail on|off|dump")
		}
		return
	case "cachedump":
		s.statsCachedump(r)
		return
	case "sizes":
		s.out = protocol.AppendStat(s.out, "sizes_status", "disabled")
	case "sizes_enable", "sizes_disable":
		// memcached answers these without an END.
		s.out = protocol.AppendStat(s.out, "sizes_status", section[6:]+"d")
		return
	case "extstore":
	default:
		ok := s.statsPairs(section, func(name, value string) {
			s.out = protocol.AppendStat(s.out, name, value)
		})
		if !ok {
			s.out = append(s.out, protocol.ReplyError...)
			return
		}
	}
	s.out = append(s.out, protocol.ReplyEnd...)
}

// statsCachedump validates `stats cachedump <class> <limit>` like memcached;
// Petrel has no slab classes, so every class is empty.
func (s *session) statsCachedump(r *protocol.TextRequest) {
	if len(r.Keys) < 3 {
		s.out = protocol.AppendLine(s.out, "CLIENT_ERROR bad command line")
		return
	}
	id, err1 := strconv.ParseUint(string(r.Keys[1]), 10, 32)
	_, err2 := strconv.ParseUint(string(r.Keys[2]), 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		s.out = protocol.AppendLine(s.out, "CLIENT_ERROR bad command line format")
	case id >= 64: // MAX_NUMBER_OF_SLAB_CLASSES
		s.out = protocol.AppendLine(s.out, "CLIENT_ERROR Illegal slab id")
	default:
		s.out = append(s.out, protocol.ReplyEnd...)
	}
}
