package stats

import "testing"

func TestRegistrySumsRetiresAndResets(t *testing.T) {
	r := NewRegistry()
	a, b := r.NewWorker(), r.NewWorker()
	a.Inc(GetHits)
	b.Add(GetHits, 2)
	b.Add(BytesRead, 10)
	f := func(step string, c Counter, want uint64) {
		t.Helper()
		if got := r.Snapshot()[c]; got != want {
			t.Errorf("%s: %s = %d, want %d", step, c.Name(), got, want)
		}
	}
	f("live", GetHits, 3)
	f("live", BytesRead, 10)
	r.Retire(a)
	f("retired", GetHits, 3)
	r.Reset()
	f("reset", GetHits, 0)
	b.Inc(GetHits)
	f("after reset", GetHits, 1)
	f("after reset", BytesRead, 0)
	if got := b.Load(GetHits); got != 3 {
		t.Errorf("worker Load = %d, want 3", got)
	}
}

func TestCounterNames(t *testing.T) {
	seen := map[string]bool{}
	for c := Counter(0); c < NumCounters; c++ {
		n := c.Name()
		if n == "" || seen[n] {
			t.Errorf("counter %d: name %q empty or duplicate", c, n)
		}
		seen[n] = true
	}
}
