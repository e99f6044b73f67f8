package storage

// PostgreSQL backend. Each Apply is one transaction: the batch is folded to
// one effect per key, COPYed into a temporary staging table, and merged with
//
//	INSERT … SELECT DISTINCT ON (key) … ORDER BY key, version DESC
//	ON CONFLICT (key) DO UPDATE … WHERE items.version < excluded.version
//
// then the applied sequence is raised in the same transaction. The version
// guard makes the merge idempotent and monotonic per key (the 2013
// memcached+DynamoDB prototype let concurrent sets land out of order; a
// per-key version is the fix). COPY plus one set-based merge measured 111k
// rows/s here, against 464 rows/s for autocommit upserts.
//
// Schema (the table name is configurable, "petrel_items" by default):
//
//	items(key bytea primary key, value bytea, flags bigint, exptime bigint,
//	      version bigint, tombstone boolean)   -- index on version
//	items_meta(name text primary key, value bigint)
//	  applied     highest sequence applied
//	  floor       the last flush_all: items and records below it are gone
//	  purged      tombstones below it are purged: records below it are ignored
//	  pflush_seq  a delayed flush_all not yet due …
//	  pflush_at   … and when it comes due (unix seconds)

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"petrel/internal/journal"
)

// PostgresOptions configures OpenPostgres.
type PostgresOptions struct {
	// DSN is a libpq connection string or URL. Empty means the standard
	// PG* environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE, …).
	DSN string
	// Table is the items table; "<Table>_meta" holds the applied sequence.
	// Default "petrel_items".
	Table string
	// MaxConns bounds the pool (default 8).
	MaxConns int32
	// TombstoneLag is how many sequences a tombstone is kept before it is
	// purged (default 1<<20). Records that far behind the applied sequence
	// are ignored afterwards, so it must exceed any replay distance.
	TombstoneLag uint64
	// PipelineRows: batches of at most this many distinct keys are sent in
	// one round trip as array statements (queueEffects) instead of through
	// a staging table filled by COPY, which takes five round trips and pays
	// off only with more rows (default 4096; -1 always uses COPY).
	PipelineRows int
	// Now is the clock (unix seconds) that decides whether a flush_all is
	// due; default time.Now.
	Now func() int64
	// Timeout bounds each step of OpenPostgres (connect, check the
	// schema, read the meta table) on top of its ctx; 0: ctx alone.
	Timeout time.Duration
	// Logf, when set, logs what Close had to cut (connections to a
	// server that stopped answering).
	Logf func(format string, args ...any)
}

// Postgres is a Backend over a PostgreSQL table.
type Postgres struct {
	pool  *pgxpool.Pool
	conns *pgConns
	where string // the server, database and user, for errors (pgTarget)
	logf  func(format string, args ...any)
	items string // quoted identifiers
	meta  string
	stage string // unquoted: CopyFrom quotes it
	lag   uint64
	small int
	now   func() int64

	mu      sync.Mutex // guards the cached meta below
	floor   uint64
	pending flushMark
	purged  uint64 // tombstones below it are gone
}

var _ Backend = (*Postgres)(nil)

// OpenPostgres connects, creates the schema if it is missing and loads the
// flush state. Its errors name the server, the database and the user (never
// the password) and the step that failed.
func OpenPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	if o.Table == "" {
		o.Table = "petrel_items"
	}
	if o.MaxConns == 0 {
		o.MaxConns = 8
	}
	if o.TombstoneLag == 0 {
		o.TombstoneLag = 1 << 20
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().Unix() }
	}
	if o.PipelineRows == 0 {
		o.PipelineRows = 4096
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	where := pgTarget(&cfg.ConnConfig.Config)
	cfg.MaxConns = o.MaxConns
	conns := newPGConns(cfg.ConnConfig.DialFunc)
	cfg.ConnConfig.DialFunc = conns.dial
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, stepError(where, "connect", 0, err)
	}
	p := &Postgres{
		pool:  pool,
		conns: conns,
		where: where,
		logf:  o.Logf,
		items: pgx.Identifier{o.Table}.Sanitize(),
		meta:  pgx.Identifier{o.Table + "_meta"}.Sanitize(),
		stage: o.Table + "_stage",
		lag:   o.TombstoneLag,
		small: o.PipelineRows,
		now:   o.Now,
	}
	// The pool connects lazily: a first connection on its own makes a
	// server that cannot be reached fail as "connect", not as the first
	// query.
	err = withStep(ctx, where, "connect", o.Timeout, p.pool.Ping)
	if err == nil {
		err = p.init(ctx, o.Table, o.Timeout)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// init checks the schema, creates what is missing, and loads the flush
// state, each step within limit.
func (p *Postgres) init(ctx context.Context, table string, limit time.Duration) error {
	ddl := fmt.Sprintf(`
CREATE TABLE IF NOT EXISTS %[1]s (
	key bytea PRIMARY KEY,
	value bytea NOT NULL,
	flags bigint NOT NULL,
	exptime bigint NOT NULL,
	version bigint NOT NULL,
	tombstone boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS %[3]s ON %[1]s (version);
CREATE TABLE IF NOT EXISTS %[2]s (name text PRIMARY KEY, value bigint NOT NULL);`,
		p.items, p.meta, pgx.Identifier{table + "_version"}.Sanitize())
	index := pgx.Identifier{table + "_version"}.Sanitize()
	var haveItems, haveMeta, haveIndex bool
	err := withStep(ctx, p.where, "check the schema", limit, func(ctx context.Context) error {
		return p.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL",
			p.items, p.meta, index).Scan(&haveItems, &haveMeta, &haveIndex)
	})
	if err != nil {
		return err
	}
	var m map[string]int64
	readMeta := func(ctx context.Context) (err error) {
		m, err = p.readMeta(ctx)
		return err
	}
	if haveMeta && !haveItems {
		// Recreating the items table empty under a meta table that says
		// what was applied would lose those rows without a word: the
		// storer resumes after them.
		if err := withStep(ctx, p.where, "check the schema: read the meta table", limit, readMeta); err != nil {
			return err
		}
		if a := m["applied"]; a > 0 {
			return fmt.Errorf("%s: table %s is missing, but %s says sequences up to %d were applied to it: "+
				"restore the table, or drop %s as well to rebuild it from the journal (only if the journal still starts at sequence 1)",
				p.where, p.items, p.meta, a, p.meta)
		}
	}
	// A role that may only read and write the tables (no CREATE on the
	// schema, not their owner) runs no DDL once they exist.
	if !(haveItems && haveMeta && haveIndex) {
		// Two servers starting at once may race on CREATE … IF NOT EXISTS
		// (a unique violation in the catalog); the second attempt sees
		// the tables.
		err := withStep(ctx, p.where, "create the schema", limit, func(ctx context.Context) (err error) {
			for range 3 {
				if _, err = p.pool.Exec(ctx, ddl); err == nil || ctx.Err() != nil {
					break
				}
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := withStep(ctx, p.where, "read the meta table", limit, readMeta); err != nil {
		return err
	}
	p.floor = uint64(m["floor"])
	if s := uint64(m["pflush_seq"]); s >= p.floor { // below it, an immediate flush cleared it
		p.pending = flushMark{seq: s, at: m["pflush_at"]}
	}
	p.purged = uint64(m["purged"])
	return nil
}

func (p *Postgres) readMeta(ctx context.Context) (map[string]int64, error) {
	rows, err := p.pool.Query(ctx, "SELECT name, value FROM "+p.meta)
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	var name string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&name, &v}, func() error {
		m[name] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Apply implements Backend. A deadlock or serialization failure between
// concurrent Applies is retried here a few times; other errors go back to
// the caller (the storer retries with backoff).
func (p *Postgres) Apply(ctx context.Context, recs []journal.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var err error
	for range 5 {
		if err = p.apply(ctx, recs); pgKind(err) != "conflict" {
			break
		}
	}
	return withKind(err, pgKind)
}

// pgKind classifies an error by its SQLSTATE class.
func pgKind(err error) string {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		switch {
		case pe.Code == "40P01" || pe.Code == "40001":
			return "conflict"
		case pe.Code[:2] == "53" || pe.Code[:2] == "57" || pe.Code[:2] == "08":
			return "unavailable" // resources, shutdown, connection
		}
	case errors.As(err, &ce), pgconn.SafeToRetry(err):
		return "unavailable"
	}
	return "error"
}

func (p *Postgres) apply(ctx context.Context, recs []journal.Record) error {
	now := p.now()
	p.mu.Lock()
	floor, pending := p.floor, p.pending
	p.mu.Unlock()
	oldFloor := floor
	// A pending flush that has come due stays a marker: a later record
	// clears or replaces it (pendingFlush).
	f, err := foldRecords(recs, max(floor, p.purgedBelow()), now)
	if err != nil {
		return err
	}
	if f.floor > floor {
		floor = f.floor
	}
	if f.pending.seq > pending.seq {
		pending = f.pending
	}
	if pending.seq != 0 && pending.seq < floor {
		pending = flushMark{}
	}

	// Everything after the merge goes in one pipelined batch: the flush
	// (it only removes versions below the floor, and every effect is at or
	// above it, so its place in the order does not matter) and the meta
	// rows.
	b := &pgx.Batch{}
	if floor > oldFloor {
		// Idempotent: nothing below the floor survives, however often run.
		b.Queue("DELETE FROM "+p.items+" WHERE version < $1", int64(floor))
	}
	if len(f.effects) <= p.small {
		// Up to PipelineRows rows: one round trip. A batch sent outside a
		// transaction runs as one implicit transaction, so it is atomic.
		p.queueEffects(b, f.effects)
		p.queueMeta(b, f.maxSeq, floor, pending)
		if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("postgres: apply %d rows: %w", len(f.effects), err)
		}
	} else {
		tx, err := p.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("postgres: begin: %w", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		if err := p.merge(ctx, tx, f.effects); err != nil {
			return err
		}
		p.queueMeta(b, f.maxSeq, floor, pending)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("postgres: update applied sequence: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: commit: %w", err)
		}
	}
	p.mu.Lock()
	if floor > p.floor {
		p.floor = floor
	}
	switch {
	case pending.seq > p.pending.seq:
		p.pending = pending
	case p.pending.seq != 0 && p.pending.seq <= p.floor:
		p.pending = flushMark{}
	}
	due := f.maxSeq > p.lag && f.maxSeq-p.lag >= p.purged+p.lag
	p.mu.Unlock()
	if due {
		// Best effort: a failed purge is retried after the next batch.
		_ = p.PurgeTombstones(ctx, f.maxSeq-p.lag)
	}
	return nil
}

// upsertGuard ends every upsert of items: a row changes only for a newer
// version, which is what keeps a stale or replayed write from going back in
// time.
const upsertGuard = `ON CONFLICT (key) DO UPDATE SET value = excluded.value, flags = excluded.flags,
	exptime = excluded.exptime, version = excluded.version, tombstone = excluded.tombstone
WHERE t.version < excluded.version`

// queueEffects queues the effects as at most two statements whose rows
// come from arrays (unnest): an upsert of the sets and deletes, with the
// same version guard as merge, and an update of the touched rows. However
// many rows, that is two statements for PostgreSQL to run, where a
// statement per row cost it a parse-bind-execute cycle each. The effects
// are sorted by key and hold each key once, which ON CONFLICT needs.
func (p *Postgres) queueEffects(b *pgx.Batch, effects []effect) {
	var (
		keys, values     [][]byte
		flags, exps, ver []int64
		tomb             []bool
		tKeys            [][]byte
		tExps, tVer      []int64
	)
	for i := range effects {
		e := &effects[i]
		if e.kind == effectTouch {
			tKeys, tExps, tVer = append(tKeys, e.key), append(tExps, e.exptime), append(tVer, int64(e.version))
			continue
		}
		v := e.value
		if v == nil {
			v = []byte{}
		}
		keys, values = append(keys, e.key), append(values, v)
		flags, exps, ver = append(flags, int64(e.flags)), append(exps, e.exptime), append(ver, int64(e.version))
		tomb = append(tomb, e.kind == effectDelete)
	}
	insert := "INSERT INTO " + p.items + " AS t (key, value, flags, exptime, version, tombstone)\n"
	switch len(keys) {
	case 0:
	case 1:
		// One row (a lone write-through client): a plain VALUES upsert
		// runs in about 230 µs here, the array form in about 400.
		b.Queue(insert+"VALUES ($1, $2, $3, $4, $5, $6)\n"+upsertGuard,
			keys[0], values[0], flags[0], exps[0], ver[0], tomb[0])
	default:
		b.Queue(insert+"SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[])\n"+upsertGuard,
			keys, values, flags, exps, ver, tomb)
	}
	if len(tKeys) > 0 {
		b.Queue("UPDATE "+p.items+` AS t SET exptime = s.exptime, version = s.version
FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS s (key, exptime, version)
WHERE t.key = s.key AND t.version < s.version AND NOT t.tombstone`, tKeys, tExps, tVer)
	}
}

// queueMeta queues the updates of the meta rows. Each only goes up, since
// batches applied concurrently (or replayed) may commit out of order: a
// batch that saw no pending flush must not write over one that a later
// batch recorded. So the pending flush is never cleared here; a reader
// ignores one below the floor. Its time is written only by the statement
// that raised its sequence, which holds that row's lock until commit (ON
// CONFLICT DO UPDATE locks the row and compares with its newest version).
func (p *Postgres) queueMeta(b *pgx.Batch, applied, floor uint64, pending flushMark) {
	for _, m := range []struct {
		name  string
		value int64
	}{{"applied", int64(applied)}, {"floor", int64(floor)}} {
		b.Queue("INSERT INTO "+p.meta+" (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = GREATEST("+
			p.meta+".value, excluded.value)", m.name, m.value)
	}
	if pending.seq == 0 {
		return
	}
	b.Queue(`WITH raised AS (
	INSERT INTO `+p.meta+` (name, value) VALUES ('pflush_seq', $1)
	ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE `+p.meta+`.value < excluded.value
	RETURNING 1)
INSERT INTO `+p.meta+` (name, value) SELECT 'pflush_at', $2 FROM raised
ON CONFLICT (name) DO UPDATE SET value = excluded.value`, int64(pending.seq), pending.at)
}

// merge stages effects with COPY and merges them into the items table.
func (p *Postgres) merge(ctx context.Context, tx pgx.Tx, effects []effect) error {
	stage := pgx.Identifier{p.stage}
	_, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+stage.Sanitize()+` (
	key bytea, value bytea, flags bigint, exptime bigint, version bigint, kind smallint
) ON COMMIT DELETE ROWS`)
	if err != nil {
		return fmt.Errorf("postgres: staging table: %w", err)
	}
	touches := 0
	src := pgx.CopyFromSlice(len(effects), func(i int) ([]any, error) {
		e := &effects[i]
		if e.kind == effectTouch {
			touches++
		}
		v := e.value
		if v == nil {
			v = []byte{}
		}
		return []any{e.key, v, int64(e.flags), e.exptime, int64(e.version), int16(e.kind)}, nil
	})
	cols := []string{"key", "value", "flags", "exptime", "version", "kind"}
	if _, err := tx.CopyFrom(ctx, stage, cols, src); err != nil {
		return fmt.Errorf("postgres: copy %d rows: %w", len(effects), err)
	}
	_, err = tx.Exec(ctx, fmt.Sprintf(`
INSERT INTO %[1]s AS t (key, value, flags, exptime, version, tombstone)
SELECT DISTINCT ON (key) key, value, flags, exptime, version, kind = %[3]d
FROM %[2]s WHERE kind <> %[4]d ORDER BY key, version DESC
`+upsertGuard, p.items, stage.Sanitize(), effectDelete, effectTouch))
	if err != nil {
		return fmt.Errorf("postgres: merge: %w", err)
	}
	if touches > 0 {
		_, err = tx.Exec(ctx, fmt.Sprintf(`
UPDATE %[1]s AS t SET exptime = s.exptime, version = s.version FROM %[2]s AS s
WHERE s.kind = %[3]d AND t.key = s.key AND t.version < s.version AND NOT t.tombstone`,
			p.items, stage.Sanitize(), effectTouch))
		if err != nil {
			return fmt.Errorf("postgres: touch: %w", err)
		}
	}
	return nil
}

func (p *Postgres) purgedBelow() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.purged
}

// PurgeTombstones deletes tombstones with a version below seq and from
// then on ignores records below seq, so a replayed record older than a purged tombstone
// cannot resurrect its key. Apply calls it every TombstoneLag sequences.
func (p *Postgres) PurgeTombstones(ctx context.Context, seq uint64) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, "DELETE FROM "+p.items+" WHERE tombstone AND version < $1", int64(seq)); err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	_, err = tx.Exec(ctx, "INSERT INTO "+p.meta+" (name, value) VALUES ('purged', $1) ON CONFLICT (name) DO UPDATE SET value = GREATEST("+p.meta+".value, excluded.value)", int64(seq))
	if err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	p.mu.Lock()
	if seq > p.purged {
		p.purged = seq
	}
	p.mu.Unlock()
	return nil
}

// AppliedSeq implements Backend. Its error names the server: the start
// reads it right after OpenPostgres.
func (p *Postgres) AppliedSeq(ctx context.Context) (uint64, error) {
	var v int64
	err := p.pool.QueryRow(ctx, "SELECT value FROM "+p.meta+" WHERE name = 'applied'").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, stepError(p.where, "read the applied sequence", 0, err)
	}
	return uint64(v), nil
}

// Get implements Backend.
func (p *Postgres) Get(ctx context.Context, key []byte, now int64) (Item, bool, error) {
	var (
		it        = Item{Key: append([]byte(nil), key...)}
		flags     int64
		version   int64
		tombstone bool
	)
	err := p.pool.QueryRow(ctx, "SELECT value, flags, exptime, version, tombstone FROM "+p.items+" WHERE key = $1", key).
		Scan(&it.Value, &flags, &it.Exptime, &version, &tombstone)
	if errors.Is(err, pgx.ErrNoRows) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, fmt.Errorf("postgres: get: %w", err)
	}
	it.Flags, it.Version = uint32(flags), uint64(version)
	if !p.visible(it, tombstone, now) {
		return Item{}, false, nil
	}
	return it, true, nil
}

func (p *Postgres) visible(it Item, tombstone bool, now int64) bool {
	p.mu.Lock()
	floor, pending := p.floor, p.pending
	p.mu.Unlock()
	return it.Version >= floor && visible(it.Version, it.Exptime, tombstone, pending, now)
}

// Scan implements Backend. Order: newest version first (the version index
// makes that cheap), so warm-up loads the most recently written items
// before the memory limit is reached.
func (p *Postgres) Scan(ctx context.Context, now int64, fn func(Item) error) error {
	rows, err := p.pool.Query(ctx, "SELECT key, value, flags, exptime, version FROM "+p.items+
		" WHERE NOT tombstone AND (exptime = 0 OR exptime > $1) ORDER BY version DESC", now)
	if err != nil {
		return stepError(p.where, "scan", 0, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it Item
		var flags, version int64
		if err := rows.Scan(&it.Key, &it.Value, &flags, &it.Exptime, &version); err != nil {
			return stepError(p.where, "scan", 0, err)
		}
		it.Flags, it.Version = uint32(flags), uint64(version)
		if !p.visible(it, false, now) {
			continue
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return stepError(p.where, "scan", 0, err)
	}
	return nil
}

// PendingFlush implements PendingFlusher.
func (p *Postgres) PendingFlush() (uint64, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending.above(p.floor)
}

// DropPendingFlush implements PendingFlusher, in memory: the meta
// rows follow at the next batch applied.
func (p *Postgres) DropPendingFlush() {
	p.mu.Lock()
	p.pending = flushMark{}
	p.mu.Unlock()
}

// Close implements Backend. It does not wait for a server that stopped
// answering (postgres_hang.go).
func (p *Postgres) Close() error {
	if n := closePool(p.pool.Close, p.conns); n > 0 {
		p.logf("%s: closed %d connections without waiting for the server, which did not answer within %v", p.where, n, pgCloseGrace)
	}
	return nil
}
