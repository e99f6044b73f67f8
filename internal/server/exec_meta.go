package server

// The meta protocol executor: mg, ms, md, ma, mn and me, as memcached 1.6.18
// runs them (proto_text.c, process_m*_command). Every command is one
// cache.Do: the callback sees the item under its lock, decides as memcached
// would (CAS checks, vivify-on-miss, recache wins, stale marks), and returns
// the new item and what to do with it. Reply flags are reflected in request
// order because memcached applies them in that order (`ma k t T30` answers
// the TTL from before the update).

import (
	"errors"

	"petrel/internal/cache"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

const (
	// metaKeyArea is the front of s.scratch that holds a decoded base64 key;
	// values are built after it.
	metaKeyArea = 256
	// maxLineNoNewline is how much input without a '\n' memcached reads
	// before it gives up on the client and closes the connection.
	maxLineNoNewline = 2048
	// maxRelExptime is memcached's REALTIME_MAXDELTA: a larger exptime is an
	// absolute unix time.
	maxRelExptime = 60 * 60 * 24 * 30
)

// execMeta runs one meta request (mg, ms, md, ma, mn, me). buf starts at the
// command; it has the same contract as execText.
func (s *session) execMeta(buf []byte) step {
	r := &s.meta
	n := protocol.ParseMeta(buf, r)
	if n == 0 {
		if len(buf) > maxLineNoNewline {
			return step{n: len(buf), close: true}
		}
		return step{}
	}
	if r.Err != protocol.MetaOK {
		s.stats.Inc(stats.ProtocolErrors)
		s.out = protocol.AppendMetaError(s.out, r.Err)
		if r.DataLen >= 0 {
			return step{n: n, swallow: r.DataLen + 2}
		}
		return step{n: n}
	}
	if cap(s.scratch) < metaKeyArea+64 {
		s.scratch = make([]byte, 0, 4096)
	}
	switch r.Cmd {
	case protocol.MetaNoop:
		s.out = append(s.out, "MN\r\n"...)
	case protocol.MetaGet:
		s.metaGet(r)
	case protocol.MetaSet:
		return s.metaSet(r, buf, n)
	case protocol.MetaDelete:
		s.metaDelete(r)
	case protocol.MetaArith:
		s.metaArith(r)
	case protocol.MetaDebug:
		s.metaDebug(r)
	}
	return step{n: n}
}

// metaKey returns the key to look up, decoding base64 into s.scratch.
func (s *session) metaKey(r *protocol.MetaRequest) []byte {
	return r.DecodeKey(s.scratch[:0:metaKeyArea])
}

// metaValueBuf returns an empty slice of s.scratch after the key area with
// room for n bytes.
func (s *session) metaValueBuf(n int) []byte {
	if cap(s.scratch) < metaKeyArea+n {
		// The old array stays alive for a decoded key that points into it.
		s.scratch = make([]byte, 0, metaKeyArea+n+n/4)
	}
	return s.scratch[metaKeyArea:metaKeyArea]
}

// metaExptime converts a meta TTL token to an absolute unix time as
// memcached's realtime() does: 0 never expires, up to 30 days is relative,
// larger is absolute, and a negative TTL is already expired.
func metaExptime(ttl int32, now int64) int64 {
	switch {
	case ttl == 0:
		return 0
	case ttl < 0:
		return now - 1
	case ttl > maxRelExptime:
		return int64(ttl)
	}
	return now + int64(ttl)
}

// appendTTL appends the t return flag: -1 for no expiry, else the seconds
// left as memcached's unsigned 32-bit arithmetic prints them.
func appendTTL(dst []byte, exptime, now int64) []byte {
	if exptime == 0 {
		return protocol.AppendMetaInt(dst, 't', -1)
	}
	return protocol.AppendMetaUint(dst, 't', uint64(uint32(exptime-now)))
}

// appendMissFlags appends the flags a failed command still reflects: the
// opaque and the key.
func appendMissFlags(dst []byte, r *protocol.MetaRequest, key []byte) []byte {
	for i := 0; i < r.NumFlags(); i++ {
		switch t := r.Flag(i); t[0] {
		case 'O':
			dst = protocol.AppendMetaToken(dst, t)
		case 'k':
			dst = protocol.AppendMetaKey(dst, key, r.Has('b'))
		}
	}
	return dst
}

// finalExptime is the exptime after a request's T and N flags: memcached
// applies them in order, N only to an item the request created.
func finalExptime(r *protocol.MetaRequest, exptime, now int64, created bool) int64 {
	for i := 0; i < r.NumFlags(); i++ {
		switch r.Flag(i)[0] {
		case 'T':
			exptime = metaExptime(r.TTL, now)
		case 'N':
			if created {
				exptime = metaExptime(r.Vivify, now)
			}
		}
	}
	return exptime
}

// metaStoreError answers a failed OpPut the way memcached answers a failed
// item allocation.
func (s *session) metaStoreError(err error) {
	if errors.Is(err, errJournal) {
		s.out = protocol.AppendLine(s.out, serverError(err))
		return
	}
	if errors.Is(err, cache.ErrTooLarge) {
		s.stats.Inc(stats.StoreTooLarge)
		s.out = append(s.out, "SERVER_ERROR object too large for cache\r\n"...)
		return
	}
	s.stats.Inc(stats.StoreNoMemory)
	s.out = append(s.out, "SERVER_ERROR out of memory storing object\r\n"...)
}

// metaGet runs mg: a lookup that may also touch (T), vivify on a miss (N),
// hand out a recache win (R, or a stale item's first fetch) and reflect
// item metadata.
func (s *session) metaGet(r *protocol.MetaRequest) {
	key := s.metaKey(r)
	now := s.now
	var (
		found, created, ttlSet bool
		view                   cache.Item // the vivified item, for the reply after Do
	)
	cas, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		switch l {
		case cache.Expired:
			s.stats.Inc(stats.GetExpired)
		case cache.Flushed:
			s.stats.Inc(stats.GetFlushed)
		}
		if l != cache.Hit {
			if !r.Has('N') {
				return it, 0
			}
			// A zero-byte placeholder whose creator wins the right to recache.
			created, found = true, true
			view = cache.Item{Key: key, Atime: now, WinSent: true}
			view.Exptime = finalExptime(r, 0, now, true)
			ttlSet = r.Has('T')
			op := cache.OpPut
			if !r.Has('u') {
				op |= cache.OpBump
			}
			return view, op
		}
		found = true
		var exptime int64
		var won bool
		s.out, exptime, won, ttlSet = s.appendGetReply(s.out, r, it, key, now, false)
		op := cache.Op(0)
		if exptime != it.Exptime || (won && !it.WinSent) {
			it.Exptime = exptime
			it.WinSent = it.WinSent || won
			op |= cache.OpMeta
		}
		if !r.Has('u') {
			op |= cache.OpBump
		}
		return it, op
	})
	if errors.Is(err, errJournal) {
		s.out = protocol.AppendLine(s.out, serverError(err))
		return
	}
	if created && err != nil {
		// memcached answers a placeholder it cannot allocate as a miss.
		created, found, ttlSet = false, false, false
	}
	if created {
		view.CAS = cas
		view.WinSent = false // the reply computes W itself
		s.out, _, _, _ = s.appendGetReply(s.out, r, view, key, now, true)
	}
	switch {
	case found && ttlSet:
		s.stats.Inc(stats.CmdTouch)
		s.stats.Inc(stats.TouchHits)
	case found:
		s.stats.Inc(stats.CmdGet)
		s.stats.Inc(stats.GetHits)
	default:
		s.stats.Inc(stats.CmdGet)
		s.stats.Inc(stats.GetMisses)
		if !r.Has('q') {
			s.out = append(s.out, "EN"...)
			s.out = protocol.AppendMetaEnd(appendMissFlags(s.out, r, key))
		}
	}
}

// appendGetReply appends an mg hit (header, return flags, value) for item
// it, applying the T, N and R flags in request order as memcached does. It
// returns the item's new exptime, whether the client won the recache token
// and whether a T flag was applied.
func (s *session) appendGetReply(dst []byte, r *protocol.MetaRequest, it cache.Item, key []byte, now int64, created bool) (_ []byte, exptime int64, won, ttlSet bool) {
	if r.Has('v') {
		dst = protocol.AppendMetaVA(dst, len(it.Value))
	} else {
		dst = append(dst, protocol.MetaHD...)
	}
	exptime = it.Exptime
	if created {
		exptime = 0 // the placeholder is born without a TTL; N sets it in order
	}
	for i := 0; i < r.NumFlags(); i++ {
		t := r.Flag(i)
		switch t[0] {
		case 'T':
			ttlSet = true
			exptime = metaExptime(r.TTL, now)
		case 'N':
			if created {
				exptime = metaExptime(r.Vivify, now)
				won = true
			}
		case 'R':
			if !it.WinSent && !created && exptime != 0 && exptime < metaExptime(r.Recache, now) {
				won = true
			}
		case 's':
			dst = protocol.AppendMetaUint(dst, 's', uint64(len(it.Value)))
		case 't':
			dst = appendTTL(dst, exptime, now)
		case 'c':
			dst = protocol.AppendMetaUint(dst, 'c', s.visibleCAS(it.CAS))
		case 'f':
			dst = protocol.AppendMetaUint(dst, 'f', uint64(it.Flags))
		case 'l':
			dst = protocol.AppendMetaUint(dst, 'l', uint64(uint32(now-it.Atime)))
		case 'h':
			if it.Fetched {
				dst = append(dst, " h1"...)
			} else {
				dst = append(dst, " h0"...)
			}
		case 'O':
			dst = protocol.AppendMetaToken(dst, t)
		case 'k':
			dst = protocol.AppendMetaKey(dst, key, r.Has('b'))
		}
	}
	// Z before X before W, as memcached orders them.
	if it.WinSent {
		dst = protocol.AppendMetaFlag(dst, 'Z')
	}
	if it.Stale {
		dst = protocol.AppendMetaFlag(dst, 'X')
		if !it.WinSent {
			won = true // the first fetch of a stale item recaches it
		}
	}
	if won {
		dst = protocol.AppendMetaFlag(dst, 'W')
	}
	dst = protocol.AppendMetaEnd(dst)
	if r.Has('v') {
		dst = append(dst, it.Value...)
		dst = protocol.AppendMetaEnd(dst)
	}
	return dst, exptime, won, ttlSet
}

// metaSetMode is what an ms does with an existing or missing item.
type metaSetMode uint8

const (
	msSet metaSetMode = iota
	msAdd
	msAppend
	msPrepend
	msReplace
	msCAS // set or replace with a C flag
)

// metaSet runs ms. Its data block follows the line; n is the line's length.
func (s *session) metaSet(r *protocol.MetaRequest, buf []byte, n int) step {
	key := s.metaKey(r)
	total := n + r.DataLen + 2
	if s.itemTooLarge(len(key), r.DataLen, r.ClientFlags) {
		// memcached also drops the old value so that a failed set cannot
		// leave stale data behind, then swallows the data block.
		s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			return it, cache.OpDelete
		})
		s.stats.Inc(stats.StoreTooLarge)
		s.out = append(s.out, "SERVER_ERROR object too large for cache\r\n"...)
		return step{n: n, swallow: r.DataLen + 2}
	}
	if len(buf) < total {
		return step{need: total}
	}
	s.stats.Inc(stats.CmdSet)
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		s.stats.Inc(stats.ProtocolErrors)
		s.out = append(s.out, "CLIENT_ERROR bad data chunk\r\n"...)
		return step{n: total}
	}
	data := buf[n : n+r.DataLen]

	mode := msSet
	switch r.Mode {
	case 'E':
		mode = msAdd
	case 'A':
		mode = msAppend
	case 'P':
		mode = msPrepend
	case 'R':
		mode = msReplace
	}
	if r.Has('C') && (mode == msSet || mode == msReplace) {
		mode = msCAS
	}
	exptime := int64(0)
	if r.Has('T') {
		exptime = metaExptime(r.TTL, s.now)
	}
	code := protocol.MetaNS
	cas, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		next := cache.Item{Key: key, Value: data, Flags: r.ClientFlags, Exptime: exptime}
		if l != cache.Hit {
			switch mode {
			case msSet, msAdd:
				code = protocol.MetaHD
				return next, cache.OpPut
			case msCAS:
				s.stats.Inc(stats.CasMisses)
				code = protocol.MetaNF
			}
			return it, 0
		}
		// memcached compares the request's CAS (0 when none was sent) with
		// the item's before it looks at the mode.
		casMatch := r.CAS != 0 && r.CAS == it.CAS
		casStale := r.CAS != 0 && r.Has('I') && r.CAS < it.CAS
		switch mode {
		case msSet, msReplace:
			code = protocol.MetaHD
			return next, cache.OpPut
		case msCAS:
			switch {
			case casMatch:
			case casStale:
				// An older writer may still store, but the item is marked
				// stale and keeps its TTL and win token.
				next.Exptime, next.Stale, next.WinSent = it.Exptime, true, it.WinSent
			default:
				s.stats.Inc(stats.CasBadval)
				code = protocol.MetaEX
				return it, 0
			}
			s.stats.Inc(stats.CasHits)
			code = protocol.MetaHD
			return next, cache.OpPut
		case msAppend, msPrepend:
			if r.CAS != 0 && !casMatch {
				code = protocol.MetaEX
				return it, 0
			}
			v := s.metaValueBuf(len(it.Value) + len(data))
			if mode == msAppend {
				v = append(append(v, it.Value...), data...)
			} else {
				v = append(append(v, data...), it.Value...)
			}
			next.Value, next.Flags, next.Exptime = v, it.Flags, it.Exptime
			code = protocol.MetaHD
			return next, cache.OpPut
		}
		return it, 0 // add over a live item: NS
	})
	if err != nil {
		if (mode == msAppend || mode == msPrepend) && !errors.Is(err, errJournal) {
			code = protocol.MetaNS // memcached: the joined item could not be allocated
		} else {
			s.metaStoreError(err)
			return step{n: total}
		}
	}
	if code != protocol.MetaHD {
		cas = 0
	} else if r.Has('q') {
		return step{n: total}
	}
	s.out = append(s.out, code...)
	for i := 0; i < r.NumFlags(); i++ {
		switch t := r.Flag(i); t[0] {
		case 'O':
			s.out = protocol.AppendMetaToken(s.out, t)
		case 'k':
			s.out = protocol.AppendMetaKey(s.out, key, r.Has('b'))
		case 'c':
			s.out = protocol.AppendMetaUint(s.out, 'c', s.visibleCAS(cas))
		}
	}
	s.out = protocol.AppendMetaEnd(s.out)
	return step{n: total}
}

// metaDelete runs md: remove the item, or with I mark it stale under a new
// CAS (and with T give it a new TTL) so that readers keep serving it while
// one of them recaches it.
func (s *session) metaDelete(r *protocol.MetaRequest) {
	key := s.metaKey(r)
	now := s.now
	code := protocol.MetaNF
	_, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			s.stats.Inc(stats.DeleteMisses)
			if r.Has('C') || r.Has('I') {
				return it, 0 // conditional: nothing to compare with
			}
			return it, s.deleteUnknown()
		}
		if r.Has('C') && r.CAS != it.CAS {
			s.stats.Inc(stats.DeleteMisses)
			code = protocol.MetaEX
			return it, 0
		}
		code = protocol.MetaHD
		if !r.Has('I') {
			s.stats.Inc(stats.DeleteHits)
			return it, cache.OpDelete
		}
		// A new version of the same value: OpPut is how the cache hands out
		// a fresh CAS. The value is copied because it aliases the old item.
		it.Value = append(s.metaValueBuf(len(it.Value)), it.Value...)
		if r.Has('T') {
			it.Exptime = metaExptime(r.TTL, now)
		}
		it.Stale, it.WinSent = true, false
		return it, cache.OpPut | keepFetched(it)
	})
	if err != nil {
		s.metaStoreError(err)
		return
	}
	if code == protocol.MetaHD && r.Has('q') {
		return
	}
	s.out = append(s.out, code...)
	s.out = protocol.AppendMetaEnd(appendMissFlags(s.out, r, key))
}

// metaArith runs ma: incr/decr of a decimal counter, optionally created on
// a miss (N with the J initial value).
func (s *session) metaArith(r *protocol.MetaRequest) {
	key := s.metaKey(r)
	now := s.now
	incr := r.Mode != 'D' && r.Mode != '-'
	var (
		code                = protocol.MetaNF
		ok, created, nonNum bool
		exptime             int64 // the item's exptime before T/N
		num                 [20]byte
		numLen              int
	)
	cas, err := s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			if !r.Has('N') {
				if incr {
					s.stats.Inc(stats.IncrMisses)
				} else {
					s.stats.Inc(stats.DecrMisses)
				}
				return it, 0
			}
			created, ok = true, true
			numLen = len(appendUintTo(num[:0], r.Initial))
			v := append(s.metaValueBuf(numLen), num[:numLen]...)
			return cache.Item{Key: key, Value: v, Exptime: finalExptime(r, 0, now, true)}, cache.OpPut
		}
		if len(it.Value) == 0 {
			nonNum = true
			return it, 0
		}
		if r.CAS != 0 && r.CAS != it.CAS {
			code = protocol.MetaEX
			return it, 0
		}
		v, good := protocol.ParseCounter(it.Value)
		if !good {
			nonNum = true
			return it, 0
		}
		switch {
		case incr:
			v += r.Delta // wraps, as in memcached
			s.stats.Inc(stats.IncrHits)
		case r.Delta > v:
			v = 0
			s.stats.Inc(stats.DecrHits)
		default:
			v -= r.Delta
			s.stats.Inc(stats.DecrHits)
		}
		ok = true
		numLen = len(appendUintTo(num[:0], v))
		// memcached rewrites a shorter number in place, padded with
		// spaces to the old length; a longer one gets a new item.
		size := max(numLen, len(it.Value))
		nv := append(s.metaValueBuf(size), num[:numLen]...)
		for len(nv) < size {
			nv = append(nv, ' ')
		}
		exptime = it.Exptime
		it.Value = nv
		it.Exptime = finalExptime(r, it.Exptime, now, false)
		return it, cache.OpPut | keepFetched(it)
	})
	switch {
	case err != nil:
		s.metaStoreError(err)
		return
	case nonNum:
		s.stats.Inc(stats.ProtocolErrors)
		s.out = append(s.out, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"...)
		return
	case !ok:
		s.out = append(s.out, code...)
		s.out = protocol.AppendMetaEnd(appendMissFlags(s.out, r, key))
		return
	}
	// Only an update of an existing counter is quiet; a vivified one answers.
	if r.Has('q') && !created {
		return
	}
	if r.Has('v') {
		s.out = protocol.AppendMetaVA(s.out, numLen)
	} else {
		s.out = append(s.out, protocol.MetaHD...)
	}
	for i := 0; i < r.NumFlags(); i++ {
		switch t := r.Flag(i); t[0] {
		case 'c':
			s.out = protocol.AppendMetaUint(s.out, 'c', s.visibleCAS(cas))
		case 't':
			s.out = appendTTL(s.out, exptime, now)
		case 'T':
			exptime = metaExptime(r.TTL, now)
		case 'N':
			if created {
				exptime = metaExptime(r.Vivify, now)
			}
		case 'O':
			s.out = protocol.AppendMetaToken(s.out, t)
		case 'k':
			s.out = protocol.AppendMetaKey(s.out, key, r.Has('b'))
		}
	}
	s.out = protocol.AppendMetaEnd(s.out)
	if r.Has('v') {
		s.out = protocol.AppendMetaEnd(append(s.out, num[:numLen]...))
	}
}

// keepFetched keeps an item's fetched mark across the OpPut that rewrites
// it in place in memcached (md I, ma): the cache clears the mark on a put
// unless the put also counts as an access.
func keepFetched(it cache.Item) cache.Op {
	if it.Fetched {
		return cache.OpBump
	}
	return 0
}

// appendUintTo appends v in decimal.
func appendUintTo(dst []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// metaSlabClasses are memcached's default slab chunk sizes (-n 48, -f 1.25,
// 1 MiB pages), for me's cls field.
var metaSlabClasses = func() []int {
	var sizes []int
	for size := 96; size <= 524288*4/5; size = size * 5 / 4 {
		if size%8 != 0 {
			size += 8 - size%8
		}
		sizes = append(sizes, size)
	}
	return append(sizes, 524288)
}()

// metaSlabClass is the memcached slab class an item of size bytes would
// live in.
func metaSlabClass(size int) int {
	for i, c := range metaSlabClasses {
		if size <= c {
			return i + 1
		}
	}
	return len(metaSlabClasses)
}

// metaDebug runs me: a human-readable dump of the item's metadata in
// memcached's format. cls and size are what memcached would use for the
// item; Petrel keeps items in segments, not slab classes.
func (s *session) metaDebug(r *protocol.MetaRequest) {
	key := s.metaKey(r)
	now := s.now
	s.stats.Inc(stats.CmdMeta)
	found := false
	s.do(key, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit {
			return it, 0
		}
		found = true
		exp := int64(-1)
		if it.Exptime != 0 {
			exp = now - it.Exptime // sic: memcached prints the negated TTL
		}
		size := memcachedItemSize(len(it.Key), len(it.Value), it.Flags, !s.srv.cfg.NoCAS)
		s.out = protocol.AppendMetaDebug(s.out, key, r.Has('b'), protocol.MetaDebugInfo{
			Exp: exp, LA: now - it.Atime, CAS: it.CAS, Fetched: it.Fetched,
			Class: metaSlabClass(size), Size: size,
		})
		return it, 0
	})
	if !found {
		s.out = append(s.out, "EN\r\n"...)
	}
}
