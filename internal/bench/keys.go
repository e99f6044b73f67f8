package bench

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
)

// MaxKeyLen is memcached's limit on key length.
const MaxKeyLen = 250

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// keySpace turns a key id into its key bytes and value bytes. Each id has one
// key length and one value length for the whole run, drawn from the
// configured distributions with a uniform variate hashed from the id.
type keySpace struct {
	n       int
	prefix  string
	keyLen  []uint8  // nil when the key size is fixed
	valLen  []uint32 // nil when the value size is fixed
	fixKey  int
	fixVal  int
	maxVal  int
	pool    []byte          // random bytes; values are windows into it
	state   []atomic.Uint64 // verify mode: what each key should hold
	counter string          // prefix of the incr keys
}

// Verify states: 0 means unknown (never written in this run), stateAbsent
// means deleted, and otherwise statePresent|len<<32|crc32c.
const (
	stateAbsent  = uint64(1)
	statePresent = uint64(1) << 63
)

func newKeySpace(c *Config, keyDist, valDist Dist) (*keySpace, error) {
	ks := &keySpace{n: c.Keys, prefix: c.Prefix, counter: c.Prefix + "n"}
	minKey := len(c.Prefix) + len(strconv.Itoa(c.Keys)) + 1
	if minKey > MaxKeyLen {
		return nil, fmt.Errorf("key prefix %q too long", c.Prefix)
	}
	if f, ok := keyDist.(Fixed); ok {
		ks.fixKey = max(minKey, min(MaxKeyLen, int(f)))
	} else {
		ks.keyLen = make([]uint8, c.Keys)
		for i := range ks.keyLen {
			ks.keyLen[i] = uint8(sizeOf(keyDist, unitHash(uint64(i), 1), minKey, MaxKeyLen))
		}
	}
	if f, ok := valDist.(Fixed); ok {
		ks.fixVal = max(0, min(c.MaxValue, int(f)))
		ks.maxVal = ks.fixVal
	} else {
		ks.valLen = make([]uint32, c.Keys)
		for i := range ks.valLen {
			v := sizeOf(valDist, unitHash(uint64(i), 2), 0, c.MaxValue)
			ks.valLen[i] = uint32(v)
			ks.maxVal = max(ks.maxVal, v)
		}
	}
	// Values are windows at hashed offsets into a pool of random letters,
	// so writing a new version of a value copies nothing.
	r := rand.New(rand.NewPCG(uint64(c.Seed), 7))
	ks.pool = make([]byte, 1<<20+ks.maxVal)
	for i := range ks.pool {
		ks.pool[i] = 'a' + byte(r.IntN(26))
	}
	if c.Verify {
		ks.state = make([]atomic.Uint64, c.Keys)
	}
	return ks, nil
}

func (ks *keySpace) keyLenOf(id int) int {
	if ks.keyLen == nil {
		return ks.fixKey
	}
	return int(ks.keyLen[id])
}

func (ks *keySpace) valLenOf(id int) int {
	if ks.valLen == nil {
		return ks.fixVal
	}
	return int(ks.valLen[id])
}

// appendKey appends the key of id: prefix, decimal id, then 'x' padding to
// its length. The padding is not a digit, so keys stay distinct.
func (ks *keySpace) appendKey(b []byte, id int) []byte {
	start := len(b)
	b = append(b, ks.prefix...)
	b = strconv.AppendInt(b, int64(id), 10)
	for len(b)-start < ks.keyLenOf(id) {
		b = append(b, 'x')
	}
	return b
}

// appendCounterKey appends the key that incr operations use for id; counters
// live apart from values, which are not numbers.
func (ks *keySpace) appendCounterKey(b []byte, id int) []byte {
	b = append(b, ks.counter...)
	return strconv.AppendInt(b, int64(id), 10)
}

// value returns the bytes of version ver of id's value.
func (ks *keySpace) value(id int, ver uint64) []byte {
	n := ks.valLenOf(id)
	off := int(mix64(uint64(id)<<20^ver) % (1 << 20))
	return ks.pool[off : off+n]
}

func checksum(v []byte) uint64 {
	return statePresent | uint64(len(v))<<32 | uint64(crc32.Checksum(v, castagnoli))
}

// unitHash maps (x, salt) to a uniform float in (0, 1).
func unitHash(x, salt uint64) float64 {
	return (float64(mix64(x*0x9e3779b97f4a7c15+salt)>>11) + 0.5) / (1 << 53)
}

// mix64 is the SplitMix64 finaliser.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ z>>31
}
