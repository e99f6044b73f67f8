package cmdlog

import (
	"encoding/binary"
	"sync/atomic"
)

// DefaultRingSize is the bytes of one connection's ring: about 900 records
// of 40-byte keys, several milliseconds of a busy connection's requests at
// the drainer's pace, and little enough that a thousand logging
// connections cost 64 MiB.
const DefaultRingSize = 64 << 10

// recHeader is the fixed part of an encoded record:
//
//	0  u16 total length (header + key + client)
//	2  u8  cmd, u8 result, u16 key length, u8 client length, u8 bits
//	8  i64 time (unix microseconds)
//	16 u32 flags, u32 value length
//	24 i64 ttl
//	32 u32 reply length
const recHeader = 36

// Record bits.
const (
	bitNoKey = 1 << iota // the command has no key: the line says "-"
)

// maxKey bounds the key bytes copied into a record; memcached's keys stop
// at 250 bytes, and a longer one (a binary key) is cut rather than allowed
// to fill the ring.
const maxKey = 1024

// Record is one logged request, as the request path hands it over. Key and
// Client are copied by Put and may be reused afterwards.
type Record struct {
	Time   int64 // unix microseconds
	Cmd    Cmd
	Result Result
	NoKey  bool   // the command has no key (flush_all, version, mn...)
	Key    []byte // raw key bytes (decoded, for meta base64 keys)
	Flags  uint32
	VLen   uint32
	TTL    int64 // exptime as the client sent it
	RLen   uint32
	Client []byte // per-record client address (UDP); nil means the ring's
}

// Ring is a single-producer single-consumer byte ring of encoded records.
// The producer is the connection's goroutine (Put), the consumer the
// logger's drainer. head and tail are free-running byte counts; each lives
// on its own cache line so that the two sides do not slow each other down.
type Ring struct {
	_      [64]byte
	tail   atomic.Uint64 // written by the producer only
	_      [56]byte
	head   atomic.Uint64 // written by the consumer only
	_      [56]byte
	drops  atomic.Uint64 // records refused because the ring was full
	puts   atomic.Uint64 // records accepted
	done   atomic.Bool   // the producer will not Put again
	buf    []byte
	mask   uint64
	client string // formatted client address for records without one
	wake   func() // nudges the drainer when the ring passes half full
}

// newRing returns a ring of size bytes, rounded up to a power of two.
func newRing(size int, client string, wake func()) *Ring {
	n := 1024
	for n < size {
		n <<= 1
	}
	return &Ring{buf: make([]byte, n), mask: uint64(n - 1), client: client, wake: wake}
}

// Put copies rec into the ring. It reports false, and counts a drop, when
// the ring has no room: the caller never waits for the drainer.
func (r *Ring) Put(rec *Record) bool {
	key := rec.Key
	if len(key) > maxKey {
		key = key[:maxKey]
	}
	client := rec.Client
	if len(client) > 255 {
		client = client[:255]
	}
	n := uint64(recHeader + len(key) + len(client))
	tail := r.tail.Load()
	size := uint64(len(r.buf))
	used := tail - r.head.Load()
	if size-used < n {
		r.drops.Add(1)
		return false
	}
	var h [recHeader]byte
	binary.LittleEndian.PutUint16(h[0:], uint16(n))
	h[2], h[3] = byte(rec.Cmd), byte(rec.Result)
	binary.LittleEndian.PutUint16(h[4:], uint16(len(key)))
	h[6] = byte(len(client))
	if rec.NoKey {
		h[7] = bitNoKey
	}
	binary.LittleEndian.PutUint64(h[8:], uint64(rec.Time))
	binary.LittleEndian.PutUint32(h[16:], rec.Flags)
	binary.LittleEndian.PutUint32(h[20:], rec.VLen)
	binary.LittleEndian.PutUint64(h[24:], uint64(rec.TTL))
	binary.LittleEndian.PutUint32(h[32:], rec.RLen)
	pos := r.write(tail, h[:])
	pos = r.write(pos, key)
	pos = r.write(pos, client)
	r.tail.Store(pos) // publishes the bytes above to the drainer
	r.puts.Add(1)
	if used+n > size/2 && used <= size/2 && r.wake != nil {
		r.wake()
	}
	return true
}

// write copies b at free-running position pos, wrapping around the end.
func (r *Ring) write(pos uint64, b []byte) uint64 {
	i := pos & r.mask
	k := copy(r.buf[i:], b)
	copy(r.buf, b[k:])
	return pos + uint64(len(b))
}

// read copies len(dst) bytes from position pos.
func (r *Ring) read(pos uint64, dst []byte) {
	i := pos & r.mask
	k := copy(dst, r.buf[i:])
	copy(dst[k:], r.buf)
}

// Release tells the drainer that the producer is finished: the ring is
// drained one last time and forgotten. The producer must not Put again.
func (r *Ring) Release() { r.done.Store(true) }

// Records is the number of records accepted so far.
func (r *Ring) Records() uint64 { return r.puts.Load() }

// Drops is the number of records refused so far.
func (r *Ring) Drops() uint64 { return r.drops.Load() }

// drain decodes every published record, calling fn for each; scratch holds
// a record that wraps around the end of the buffer. It returns the scratch
// (grown if needed) and the number of records read.
func (r *Ring) drain(scratch []byte, fn func(rec *Record)) ([]byte, int) {
	head, tail := r.head.Load(), r.tail.Load()
	var rec Record
	count := 0
	for head < tail {
		var lb [2]byte
		r.read(head, lb[:])
		n := uint64(binary.LittleEndian.Uint16(lb[:]))
		if cap(scratch) < int(n) {
			scratch = make([]byte, n, max(n, 2048))
		}
		b := scratch[:n]
		r.read(head, b)
		decode(b, &rec)
		fn(&rec)
		head += n
		count++
	}
	r.head.Store(head) // the space is the producer's again
	return scratch, count
}

// decode fills rec from an encoded record; its slices alias b.
func decode(b []byte, rec *Record) {
	kl, cl := int(binary.LittleEndian.Uint16(b[4:])), int(b[6])
	rec.Cmd, rec.Result = Cmd(b[2]), Result(b[3])
	rec.NoKey = b[7]&bitNoKey != 0
	rec.Time = int64(binary.LittleEndian.Uint64(b[8:]))
	rec.Flags = binary.LittleEndian.Uint32(b[16:])
	rec.VLen = binary.LittleEndian.Uint32(b[20:])
	rec.TTL = int64(binary.LittleEndian.Uint64(b[24:]))
	rec.RLen = binary.LittleEndian.Uint32(b[32:])
	rec.Key = b[recHeader : recHeader+kl]
	rec.Client = nil
	if cl > 0 {
		rec.Client = b[recHeader+kl : recHeader+kl+cl]
	}
}
