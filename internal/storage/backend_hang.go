package storage

// Errors from reaching a remote backend that hangs rather than fails: a
// frozen PostgreSQL, a blackholed network. The kernel may complete the
// TCP handshake for a server that never answers, so such a call ends only
// at its deadline, and the deadline's own error ("context deadline
// exceeded") says neither which database it was nor what was being done.
// An operator facing a start that failed that way needs both.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// stepError wraps err, from one step of using the backend at where, with
// the step and, when a deadline passed, that it timed out (after limit,
// when known). It returns nil for a nil err.
func stepError(where, step string, limit time.Duration, err error) error {
	switch {
	case err == nil:
		return nil
	case !isTimeout(err):
		return fmt.Errorf("%s: %s: %w", where, step, err)
	case limit > 0:
		return fmt.Errorf("%s: %s: timed out, no answer within %v: %w", where, step, limit, err)
	}
	return fmt.Errorf("%s: %s: timed out: %w", where, step, err)
}

// isTimeout reports a deadline that passed, the context's or the
// connection's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// withStep runs fn with a deadline of limit (none when limit ≤ 0) and
// names where and step in its error.
func withStep(ctx context.Context, where, step string, limit time.Duration, fn func(context.Context) error) error {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	return stepError(where, step, limit, fn(ctx))
}

// pgTarget names the server a pgx configuration connects to, without the
// password: "postgres at host:port (database d, user u)", listing the
// fallback hosts of a multi-host DSN too.
func pgTarget(c *pgconn.Config) string {
	var addrs []string
	add := func(host string, port uint16) {
		_, a := pgconn.NetworkAddress(host, port)
		for _, b := range addrs {
			if a == b {
				return // the same host without TLS (sslmode=prefer)
			}
		}
		addrs = append(addrs, a)
	}
	add(c.Host, c.Port)
	for _, f := range c.Fallbacks {
		add(f.Host, f.Port)
	}
	return fmt.Sprintf("postgres at %s (database %s, user %s)", strings.Join(addrs, ", "), c.Database, c.User)
}

// dynamoTarget names the table, region and endpoint a DynamoDB client
// uses.
func dynamoTarget(table, region, endpoint string) string {
	if region == "" {
		region = "no region"
	}
	if endpoint == "" {
		endpoint = "the AWS endpoint"
	}
	return fmt.Sprintf("dynamodb table %s (%s, %s)", table, region, endpoint)
}
