package test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// TestGomemcache drives the server through bradfitz/gomemcache, the most
// used Go client, over every operation it offers. memcached runs the same
// script so that a wrong expectation shows up as a failure there too.
func TestGomemcache(t *testing.T) {
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			var s *server
			if impl == "petrel" {
				s = startPetrel(t, listenOpts{})
			} else {
				s = startMemcached(t, listenOpts{})
			}
			c := memcache.New(s.addr)
			c.Timeout = 30 * time.Second // the default, 500ms, is short for a loaded CI box
			gomemcacheScript(t, c)
		})
	}
}

func gomemcacheScript(t *testing.T, c *memcache.Client) {
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// is checks an operation's error against the expected sentinel (nil for success).
	is := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", what, err, want)
		}
	}
	// value checks what Get returns for key.
	value := func(key, want string, wantFlags uint32) {
		t.Helper()
		it, err := c.Get(key)
		if err != nil {
			t.Errorf("get %q: %v, want %q", key, err, want)
			return
		}
		if string(it.Value) != want || it.Flags != wantFlags {
			t.Errorf("get %q = %q flags %d, want %q flags %d", key, it.Value, it.Flags, want, wantFlags)
		}
	}
	miss := func(key string) {
		t.Helper()
		if _, err := c.Get(key); !errors.Is(err, memcache.ErrCacheMiss) {
			t.Errorf("get %q: %v, want a miss", key, err)
		}
	}

	must("ping", c.Ping())
	must("flush", c.DeleteAll())

	// set and get, including flags, an empty value and a binary value.
	must("set", c.Set(&memcache.Item{Key: "k", Value: []byte("v1"), Flags: 42}))
	value("k", "v1", 42)
	must("set empty", c.Set(&memcache.Item{Key: "empty", Value: []byte{}}))
	value("empty", "", 0)
	bin := string([]byte{0, '\r', '\n', 0xff, 'E', 'N', 'D', '\r', '\n'})
	must("set binary", c.Set(&memcache.Item{Key: "bin", Value: []byte(bin)}))
	value("bin", bin, 0)
	big := make([]byte, 500<<10)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	must("set 500 KiB", c.Set(&memcache.Item{Key: "big", Value: big}))
	value("big", string(big), 0)
	miss("absent")

	// cas: a stale CAS token is a conflict, a fresh one wins.
	it, err := c.Get("k")
	must("get for cas", err)
	must("set behind the client's back", c.Set(&memcache.Item{Key: "k", Value: []byte("v2")}))
	it.Value = []byte("stale")
	is("cas with stale token", c.CompareAndSwap(it), memcache.ErrCASConflict)
	value("k", "v2", 0)
	it, err = c.Get("k")
	must("get for cas", err)
	it.Value = []byte("v3")
	must("cas with fresh token", c.CompareAndSwap(it))
	value("k", "v3", 0)
	is("cas of a second use of the token", c.CompareAndSwap(it), memcache.ErrCASConflict)
	must("delete", c.Delete("k"))
	is("cas of a deleted key", c.CompareAndSwap(it), memcache.ErrCacheMiss)

	// add and replace.
	must("add new", c.Add(&memcache.Item{Key: "a", Value: []byte("1")}))
	is("add existing", c.Add(&memcache.Item{Key: "a", Value: []byte("2")}), memcache.ErrNotStored)
	value("a", "1", 0)
	must("replace existing", c.Replace(&memcache.Item{Key: "a", Value: []byte("3"), Flags: 7}))
	value("a", "3", 7)
	is("replace absent", c.Replace(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)
	miss("nope")

	// append and prepend keep the flags of the stored item.
	must("append", c.Append(&memcache.Item{Key: "a", Value: []byte(">>")}))
	must("prepend", c.Prepend(&memcache.Item{Key: "a", Value: []byte("<<")}))
	value("a", "<<3>>", 7)
	is("append absent", c.Append(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)
	is("prepend absent", c.Prepend(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)

	// incr and decr: 64-bit wrap on incr, floor at zero on decr.
	must("set counter", c.Set(&memcache.Item{Key: "n", Value: []byte("10")}))
	incr := func(key string, d uint64, want uint64) {
		t.Helper()
		got, err := c.Increment(key, d)
		if err != nil || got != want {
			t.Errorf("incr %s %d = %d, %v; want %d", key, d, got, err, want)
		}
	}
	decr := func(key string, d uint64, want uint64) {
		t.Helper()
		got, err := c.Decrement(key, d)
		if err != nil || got != want {
			t.Errorf("decr %s %d = %d, %v; want %d", key, d, got, err, want)
		}
	}
	incr("n", 5, 15)
	decr("n", 3, 12)
	decr("n", 100, 0)
	must("set max", c.Set(&memcache.Item{Key: "max", Value: []byte("18446744073709551615")}))
	incr("max", 2, 1)
	must("set 9", c.Set(&memcache.Item{Key: "nine", Value: []byte("9")}))
	incr("nine", 1, 10)
	value("nine", "10", 0)
	_, err = c.Increment("absent", 1)
	is("incr absent", err, memcache.ErrCacheMiss)
	_, err = c.Increment("a", 1)
	if err == nil {
		t.Errorf("incr of a non-numeric value succeeded")
	}

	// touch: an item touched to expire in the past is gone; touch of an
	// absent key is a miss.
	must("set for touch", c.Set(&memcache.Item{Key: "t", Value: []byte("x")}))
	must("touch", c.Touch("t", 3600))
	value("t", "x", 0)
	must("touch to the past", c.Touch("t", -1))
	miss("t")
	is("touch absent", c.Touch("absent", 10), memcache.ErrCacheMiss)
	must("set expired", c.Set(&memcache.Item{Key: "exp", Value: []byte("x"), Expiration: -1}))
	miss("exp")

	// GetAndTouch (gat).
	must("set for gat", c.Set(&memcache.Item{Key: "g", Value: []byte("gv")}))
	it, err = c.GetAndTouch("g", 3600)
	if err != nil || string(it.Value) != "gv" {
		t.Errorf("gat g = %v, %v; want gv", it, err)
	}
	_, err = c.GetAndTouch("absent", 10)
	is("gat absent", err, memcache.ErrCacheMiss)

	// delete.
	must("delete", c.Delete("a"))
	miss("a")
	is("delete absent", c.Delete("a"), memcache.ErrCacheMiss)

	// GetMulti returns the hits only.
	keys := []string{}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("multi-%02d", i)
		keys = append(keys, k)
		if i%2 == 0 {
			must("set "+k, c.Set(&memcache.Item{Key: k, Value: []byte("v" + k), Flags: uint32(i)}))
		}
	}
	m, err := c.GetMulti(keys)
	must("get multi", err)
	if len(m) != 25 {
		t.Errorf("get multi returned %d items, want 25", len(m))
	}
	for i, k := range keys {
		it, ok := m[k]
		if ok != (i%2 == 0) {
			t.Errorf("get multi: %s present=%v", k, ok)
			continue
		}
		if ok && (string(it.Value) != "v"+k || it.Flags != uint32(i)) {
			t.Errorf("get multi: %s = %q flags %d", k, it.Value, it.Flags)
		}
	}

	// flush_all (DeleteAll) empties the cache.
	must("flush", c.DeleteAll())
	miss("n")
	miss("multi-00")
	miss("big")
}

// TestConcurrentClients runs many clients at once: each writes and reads
// back its own keys, and all increment one shared counter, whose final
// value shows whether any increment was lost. Under -race the server is
// race-checked by this traffic too.
func TestConcurrentClients(t *testing.T) {
	const clients, ops = 16, 100
	s := startPetrel(t, listenOpts{})
	c := memcache.New(s.addr)
	c.Timeout = 30 * time.Second
	c.MaxIdleConns = clients
	if err := c.Set(&memcache.Item{Key: "counter", Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		go func() {
			errs <- func() error {
				for i := 0; i < ops; i++ {
					key := fmt.Sprintf("w%d-k%d", w, i%10)
					val := fmt.Sprintf("value %d of writer %d", i, w)
					if err := c.Set(&memcache.Item{Key: key, Value: []byte(val)}); err != nil {
						return fmt.Errorf("set %s: %w", key, err)
					}
					it, err := c.Get(key)
					if err != nil {
						return fmt.Errorf("get %s: %w", key, err)
					}
					if string(it.Value) != val {
						return fmt.Errorf("get %s = %q, want %q", key, it.Value, val)
					}
					if _, err := c.Increment("counter", 1); err != nil {
						return fmt.Errorf("incr: %w", err)
					}
				}
				return nil
			}()
		}()
	}
	for w := 0; w < clients; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	it, err := c.Get("counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(clients * ops); string(it.Value) != want {
		t.Errorf("counter = %s after %d increments", it.Value, clients*ops)
	}
}
