package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStallWatch: the watch leaves a scan alone while items come, cancels
// it with errWarmStalled once they stop for the limit, and does nothing
// once stopped. The end-to-end case, a PostgreSQL frozen mid-scan, is
// test/TestBackendWarmupStalled.
func TestStallWatch(t *testing.T) {
	w := &stallWatch{limit: time.Second}
	ctx, unwatch := w.watch(context.Background())
	defer unwatch()
	for range 30 {
		w.items.Add(1)
		time.Sleep(10 * time.Millisecond)
	}
	if err := context.Cause(ctx); err != nil {
		t.Fatalf("cancelled while items came: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not cancelled 10 s after the items stopped")
	}
	if !errors.Is(context.Cause(ctx), errWarmStalled) {
		t.Fatalf("cause %v, want errWarmStalled", context.Cause(ctx))
	}
	if err := w.stalled(ctx, ctx.Err()); !errors.Is(err, errWarmStalled) {
		t.Fatalf("stalled: %v", err)
	}

	w = &stallWatch{limit: 20 * time.Millisecond}
	ctx, unwatch = w.watch(context.Background())
	unwatch()
	unwatch() // twice is harmless
	time.Sleep(100 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatal("a stopped watch cancelled its context")
	}
	if err := w.stalled(ctx, errors.New("x")); err == nil || errors.Is(err, errWarmStalled) {
		t.Fatalf("stalled without a stall: %v", err)
	}
}
