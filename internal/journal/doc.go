// Package journal is Petrel's write-ahead journal: the spine that every
// durable write, the storer, replicas and snapshots read from.
//
// The idea is the log of Amazon MemoryDB (SIGMOD'24): a command runs in
// memory, its effect is appended to the journal, and the reply is held until
// the journal says the effect is durable. Records therefore hold effects
// (the resulting item, a delete, a touch, a flush), never commands, so replay
// is deterministic and needs no clock.
//
// The local implementation, File, keeps the journal in segment files of a
// configurable size and commits in groups, as database logs have done since
// the 1980s (DeWitt et al., "Implementation techniques for main memory
// database systems", SIGMOD'84) and as Redis's appendfsync always does:
// every record appended while the previous fsync ran is written with one
// write and one fdatasync. Appenders get their sequence number at once (the
// cache uses it as the item's CAS) and wait for durability separately
// (WaitDurable, DurableSeq), so the server can keep parsing and executing
// while the disk works. The waiters themselves do the writing, one at a
// time, as LevelDB's write groups do (commit.go), so that no goroutine
// hand-off sits between a request and its fsync; and the active segment is
// kept zero-filled ahead of its records (zero.go), so that an fdatasync
// flushes data only, as PostgreSQL's pre-zeroed WAL segments do.
//
// A failing disk never acknowledges: the journal enters a sticky failed
// state, and only Resume, after re-reading and verifying what was
// acknowledged, leaves it. Open recovers from a crash by truncating a torn
// tail and refuses to open over corruption in the middle unless asked to
// repair. docs/durability.md describes the on-disk format and the modes.
package journal
