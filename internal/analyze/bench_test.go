package analyze

import (
	"bytes"
	"testing"
)

func BenchmarkAnalyze(b *testing.B) {
	var log bytes.Buffer
	if err := Synth(&log, SynthConfig{Lines: 200000, Keys: 50000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(log.Len()))
	for b.Loop() {
		a, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Read(bytes.NewReader(log.Bytes()), "synth"); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Report(); err != nil {
			b.Fatal(err)
		}
	}
}
