package server

// This file is the contract between the connection layer (conn.go, udp.go)
// and the protocol executors (exec_text.go, exec_meta.go, exec_binary.go).

import (
	"petrel/internal/cache"
	"petrel/internal/journal"
	"petrel/internal/protocol"
	"petrel/internal/stats"
)

// Version is what `version` answers. It starts with memcached's version so
// that clients that parse it see a 1.6 server.
const Version = "1.6.18-petrel-0.1.0"

// step is the outcome of executing one request.
type step struct {
	n       int  // bytes of input consumed; 0 means the request is not complete yet
	need    int  // when n == 0: total bytes the request needs, if known (so the reader grows its buffer to fit); 0 if unknown
	swallow int  // bytes to read and discard after n (a value too large to store)
	close   bool // close the connection once s.out is written
}

// session is one client's state: a TCP or unix connection, or one UDP
// request. Only the goroutine serving the connection touches it.
type session struct {
	srv   *Server
	cache *cache.Cache
	stats *stats.Worker
	now   int64  // unix seconds, read once per batch of requests
	out   []byte // replies of the current batch, written with one write
	udp   bool   // UDP: no quit/close semantics beyond the datagram

	// scratch is reusable memory for executors (building append values,
	// incr results, decoded base64 keys) so the request path allocates nothing.
	scratch []byte

	txt  protocol.TextRequest // the classic text parser's reusable request (exec_text.go)
	meta protocol.MetaRequest // the meta parser's reusable request (exec_meta.go)
	clog *cmdlogSession       // the command logger's state, once it logged a request (cmdlog_capture.go)

	// holdSeq is the journal sequence the batch's replies wait for, and rec
	// the record s.do builds (durable.go).
	holdSeq uint64
	// backendUnknown is set while a request reruns after a read-through
	// whose backend did not answer (durable.go, deleteUnknown).
	backendUnknown bool
	rec            journal.Record
}

// exec runs the first complete request in buf and appends its reply to s.out.
// Binary requests start with the magic byte 0x80; everything else is text
// (classic or meta).
func (s *session) exec(buf []byte) step {
	if len(buf) > 0 && buf[0] == 0x80 {
		return s.execBinary(buf)
	}
	return s.execText(buf)
}
