// Package test holds Petrel's end-to-end tests. They build the petrel binary
// once, start it as a real process on a loopback port, and talk to it with
// real clients: libmemcached's memccapable conformance tester, pymemcache's
// integration suite, bradfitz/gomemcache, and raw protocol bytes.
//
// The reference for "correct" is memcached itself. The differential test
// (diff_test.go) replays the request scripts in testdata/diff against a real
// memcached 1.6 and against Petrel, and requires byte-identical replies once
// the fields that legitimately differ (CAS values, statistics, the version
// string) are masked. This is differential testing in the sense of
// McKeeman, "Differential Testing for Software" (1998): a second
// implementation is the oracle, so no expected output is written by hand.
//
// Tests that need an external program skip when it is missing, unless
// PETREL_REQUIRE_DEPS=1 (set by `make test`), which turns those skips into
// failures so that CI never passes by skipping.
package test
