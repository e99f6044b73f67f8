package storage

import (
	"errors"
	"fmt"
	"time"
)

// The commands that run a storer without a server (`petrel storer`,
// `petrel snapshot create`) must exit when told to, whatever the store's
// disk does. On a disk that cannot take a flush, Pebble stalls an Apply
// once its memtables are full, until a flush succeeds, which may be never;
// Close then waits behind that Apply. So, as the server's closeBacking
// does, each wait for the storer to stop and for the store to close is
// bounded, and a store that passes the bound is left open, as a crash
// would leave it: it is only ever ahead of the journal's truncation point,
// so the next run replays from the journal whatever it lacks.

// StoreStopTimeout bounds each wait, once asked to stop, for the storer to
// return and for the store to close.
var StoreStopTimeout = 30 * time.Second

// ErrStoreStuck means the storer or the store did not stop within
// StoreStopTimeout. The store is then still open, and closing it would
// wait as well: the process should exit without it.
var ErrStoreStuck = errors.New("STORE STUCK")

func storeStuck(what string) error {
	return fmt.Errorf("%w: could not %s within %v (a full or failing disk, or a database that does not answer?); exiting without it: "+
		"the journal keeps every write the store lacks, and the next run replays them", ErrStoreStuck, what, StoreStopTimeout)
}

// WaitStorerStopped waits, at most StoreStopTimeout, for a storer that was
// asked to stop (its ctx cancelled) to return its error on errc; after
// that it returns an ErrStoreStuck error, and the store must be left open.
func WaitStorerStopped(errc <-chan error) error { return waitBounded(errc, "stop the storer") }

// CloseStore closes b, waiting at most StoreStopTimeout; after that it
// returns an ErrStoreStuck error and leaves the Close running.
func CloseStore(b Backend) error {
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	return waitBounded(done, "close the store")
}

func waitBounded(errc <-chan error, what string) error {
	t := time.NewTimer(StoreStopTimeout)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return storeStuck(what)
	}
}
