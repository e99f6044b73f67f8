//go:build race

package analyze

// raceEnabled scales the heaviest tests down under the race detector,
// which slows the cache replay about tenfold.
const raceEnabled = true
