package server

// Rules shared by the three protocol executors.

// memcachedItemSize is what memcached's item_alloc counts against -I: its
// item header (48 bytes, 8 more with CAS), the key and its NUL, the data and
// its CRLF, and 4 bytes for non-zero client flags. Using memcached's
// arithmetic rather than Petrel's own item size puts the too-large boundary
// at the same byte as memcached's.
func memcachedItemSize(nkey, ndata int, flags uint32, withCAS bool) int {
	n := 48 + nkey + 1 + ndata + 2
	if withCAS {
		n += 8
	}
	if flags != 0 {
		n += 4
	}
	return n
}

// itemTooLarge reports whether an item of this shape is over -I.
func (s *session) itemTooLarge(nkey, ndata int, flags uint32) bool {
	limit := s.srv.cfg.MaxItemSize
	if limit <= 0 {
		limit = 1 << 20
	}
	return memcachedItemSize(nkey, ndata, flags, !s.srv.cfg.NoCAS) > limit
}

// visibleCAS is the CAS a client sees: 0 under -C.
func (s *session) visibleCAS(cas uint64) uint64 {
	if s.srv.cfg.NoCAS {
		return 0
	}
	return cas
}
