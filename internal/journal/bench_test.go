package journal

import "testing"

func BenchmarkAppendRecord(b *testing.B) {
	r := Record{Seq: 1, Type: TypeSet, Key: []byte("user:1234567890"), Value: make([]byte, 100), CAS: 1}
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(EncodedLen(&r)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &r)
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	buf := AppendRecord(nil, &Record{Seq: 1, Type: TypeSet, Key: []byte("user:1234567890"), Value: make([]byte, 100), CAS: 1})
	var r Record
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRecord(buf, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendDurable is one appender waiting for each record: the
// latency of one group commit on this disk.
func BenchmarkAppendDurable(b *testing.B) {
	j, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	r := Record{Type: TypeSet, Key: []byte("k"), Value: make([]byte, 100)}
	for b.Loop() {
		r.CAS = 0
		seq, err := j.Append(&r)
		if err == nil {
			err = j.WaitDurable(seq)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
