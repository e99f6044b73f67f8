// Package bench is the load generator behind `petrel bench`.
//
// It follows the closed-loop design of memtier_benchmark, memaslap and
// mutilate (Leverich and Kozyrakis, EuroSys'14): a fixed number of
// connections, each keeping up to a pipeline depth of requests in flight, so
// the offered load adapts to the server. Keys are drawn uniformly or from a
// Zipf law; key and value sizes are drawn per key from fixed, uniform or
// published production models (Twitter's 2020 cache traces, Facebook's ETC
// pool from Atikoglu et al., SIGMETRICS'12), so a key keeps one size for the
// whole run as it would in production.
//
// Latencies go into HDR histograms (Gil Tene's HdrHistogram), one per
// connection, merged at the end, so that recording costs a few nanoseconds
// and the tail is exact to three significant digits.
//
// In verify mode each key's last written value is remembered as a CRC32-C
// checksum, and every value read back is checked against it, so a benchmark
// doubles as a data-integrity check. Each connection then owns a disjoint
// slice of the key space: requests on one connection are served in order, so
// the expected value of every read is known exactly, with no false alarms
// from races between connections.
package bench
