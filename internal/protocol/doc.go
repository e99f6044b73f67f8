// Package protocol holds Petrel's three memcached wire codecs: bytes in,
// commands out, and replies back to bytes. It does no I/O and knows nothing
// of the cache; internal/server feeds it a connection's read buffer and
// executes what it parses, which keeps every codec cheap to test and fuzz.
//
//   - The classic text protocol (text*.go): one command per line, tokens split
//     on spaces, storage commands followed by a data block. The parser follows
//     memcached 1.6.18's proto_text.c byte for byte, including its quirks
//     (collapsed spaces, bare \n line ends, a line cut at its first NUL, C
//     strtoul/strtol number rules), because clients and tests depend on them.
//   - The meta text protocol (meta*.go): the two-letter commands mg, ms, md,
//     ma, mn and me with single-letter flags, described in memcached's
//     doc/protocol.txt.
//   - The binary protocol (binary*.go): 24-byte headers starting with the
//     magic byte 0x80, deprecated by memcached since 1.6.0 but still served.
//
// Parsers decode into reusable request structs whose keys alias the input
// buffer, so the steady-state request path allocates nothing; reply helpers
// append to a caller-owned []byte.
package protocol
