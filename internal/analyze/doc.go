// Package analyze turns Petrel command logs (docs/cmdlog.md) into a
// workload report: the request mix and hit ratio over time, key, value and
// TTL size distributions, the working-set size per window, the hottest keys,
// a heat map of request rate per key band, and miss-ratio curves (miss ratio
// against cache size in bytes) for LRU and for Petrel's own eviction policy.
//
// # Bounded memory: SHARDS
//
// Logs may be far larger than memory, so everything that needs per-key state
// runs on a spatial sample of the keys, after SHARDS (Waldspurger, Park,
// Garthwaite and Ahmad, "Efficient MRC construction with SHARDS", FAST'15):
// a key is in the sample when hash(key) < T, so every request for a sampled
// key is seen and none for the others, and a sample at rate R = T/2^64
// behaves like the whole trace scaled down by R. Stack distances and
// working-set bytes measured on the sample are divided by R; a cache of C
// bytes is simulated by a cache of R·C bytes fed the sample (the "miniature
// simulation" of Waldspurger et al., ATC'17). The fixed-rate variant keeps R;
// the fixed-size variant starts at R = 1 and halves T whenever the sample
// holds more than a set number of keys, dropping the keys above the new
// threshold, so memory is bounded whatever the trace. Counts that cover
// the whole log (the mix, hit ratio, size distributions, heat map and
// hottest keys) are not sampled.
//
// # LRU: exact stack distances
//
// The LRU curve comes from Mattson et al.'s stack algorithm ("Evaluation
// techniques for storage hierarchies", IBM Systems Journal 1970) in bytes:
// a read of key x hits in an LRU cache of C bytes exactly when the sizes of
// the distinct keys referenced since the last reference to x, plus x's
// own, add up to at most C. Each key's last reference is a position in a
// Fenwick tree (Fenwick, 1994) holding its size, so each distance is a
// prefix sum in O(log n), and positions are renumbered when they run out.
// On a trace of gets and sets without deletes and without values that
// shrink this equals a simulated LRU exactly (tested); deletes and expiry
// remove the key from the stack, which is slightly optimistic.
//
// # Petrel: the real engine
//
// The Petrel curve is not a model: the sampled trace is replayed through
// internal/cache itself (cache.New with the chosen eviction policy) at a
// ladder of memory limits two per doubling, each about 64 segments, and the
// misses are counted. See sim.go for how the ladder follows a falling rate.
//
// # Hot keys
//
// The hottest keys come from Space-Saving (Metwally, Agrawal and El Abbadi,
// "Efficient computation of frequent and top-k elements in data streams",
// ICDT'05) over every request, each count with its error bound.
package analyze
