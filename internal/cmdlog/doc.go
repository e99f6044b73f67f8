// Package cmdlog is Petrel's command logger: one text line per request
// (client, time, command, key, sizes, TTL, outcome), written off the request
// path so that logging every request costs the server little.
//
// The design is Twemcache's klog (twitter/twemcache, src/mc_klog.c): every
// worker owns a ring buffer that only it writes, and one background
// goroutine collects all rings and writes the lines. Here a ring belongs to a
// connection (Petrel serves each connection on its own goroutine), so each
// ring has exactly one producer and one consumer and needs no lock: the
// producer publishes with an atomic store of its tail, the drainer frees
// space with an atomic store of its head (a Lamport queue). The producer
// copies a small fixed binary record plus the key into the ring; all
// formatting (decimal numbers, base64, key hashing, timestamps) happens in
// the drainer. When a ring is full the record is dropped and counted: a
// request never waits for the log.
//
// The log format is versioned; docs/cmdlog.md is its specification, shared
// with `petrel analyze`, which reads it:
//
//	# petrel-cmdlog v1 fields=time,client,cmd,key,flags,vlen,ttl,result,rlen
//	1732200000.123456 127.0.0.1:50522 get foo 0 3 0 hit 16
package cmdlog
