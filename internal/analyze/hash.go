package analyze

// keyHash is FNV-1a 64 finished with the SplitMix64 mixer. FNV alone is
// weak in its high bits for short keys, and SHARDS compares the whole
// 64-bit value to a threshold, so the mixer spreads every input bit over
// all output bits. It is seedless, so the same log samples the same keys on
// every run.
func keyHash(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range k {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
