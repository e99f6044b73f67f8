package storage

// DynamoDB backend. Every key is one item written with a conditional put,
//
//	attribute_not_exists(k) OR ver < :v
//
// so a write whose version is not above the stored one fails with
// ConditionalCheckFailedException, which here means "already newer": done.
// That per-key version is what keeps concurrent or replayed sets from
// landing out of order, the failure of the 2013 memcached+DynamoDB
// prototype. BatchWriteItem takes no conditions, so throughput comes from
// a bounded pool of parallel conditional writes; the applied sequence is
// written to a meta item only after every write of the batch succeeded, so
// a failed batch is simply applied again.
//
// Item layout (the hash key "k" is binary; item keys get a 'i' prefix, the
// meta item is "m"):
//
//	k   B     'i' + memcached key
//	v   B     value (absent on tombstones)
//	f   N     client flags
//	e   N     exptime, absolute unix seconds, 0 = never
//	ver N     journal sequence of the last write
//	t   BOOL  tombstone
//
// The meta item holds applied, floor (last flush_all), purged (tombstones
// below it are gone), pfs and pfa (a delayed flush_all and its time).
//
// Values: DynamoDB items are at most 400 KB, memcached values 1 MiB. This
// backend refuses rather than chunks: MaxValueSize tells the server the
// largest value it can take, so the server answers SERVER_ERROR before the
// write is journaled, and Apply returns ErrValueTooLarge (without writing
// anything of the batch) if a larger one reaches it anyway. Chunking would
// need multi-item transactions on every large write and multi-item reads
// that check versions agree; refusing keeps every write a single
// conditional put.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"petrel/internal/journal"
)

const (
	// dynamoItemLimit is DynamoDB's item size limit, 400 KB.
	dynamoItemLimit = 400 * 1024
	// dynamoOverhead is reserved for the key (memcached keys are at most
	// 250 bytes) and the other attributes' names and values.
	dynamoOverhead = 1024
)

// DynamoDBOptions configures OpenDynamoDB. Credentials come from the
// standard AWS chain (environment, shared config and credentials files,
// SSO, instance role).
type DynamoDBOptions struct {
	Table    string // default "petrel"
	Region   string // default: from the AWS config chain
	Endpoint string // e.g. http://127.0.0.1:8000 for dynalite or DynamoDB Local
	// Workers bounds the conditional writes in flight per Apply
	// (default 16).
	Workers int
	// MaxAttempts is the SDK's per-call retry budget for throttling and
	// transient errors (default 3); beyond it Apply fails and the storer
	// retries the batch.
	MaxAttempts int
	// CreateTable creates the table (on-demand billing) when missing.
	CreateTable bool
	// TombstoneLag: see PostgresOptions.TombstoneLag (default 1<<20).
	TombstoneLag uint64
	Now          func() int64 // unix seconds; default time.Now
	// Timeout bounds each request of OpenDynamoDB on top of its ctx (0:
	// ctx alone). Waiting for a table it created to become active is
	// bounded by tableWait instead.
	Timeout time.Duration
}

// tableWait bounds the wait for a new table to become active (seconds on
// DynamoDB, none on dynalite).
const tableWait = 5 * time.Minute

// DynamoDB is a Backend over a DynamoDB table.
type DynamoDB struct {
	db      *dynamodb.Client
	table   *string
	where   string // table, region and endpoint, for errors (dynamoTarget)
	workers int
	lag     uint64
	now     func() int64

	mu      sync.Mutex // guards the cached meta below
	floor   uint64
	purged  uint64
	pending flushMark
}

var _ Backend = (*DynamoDB)(nil)

// MaxValueSize is the largest value this backend stores.
func (d *DynamoDB) MaxValueSize() int { return dynamoItemLimit - dynamoOverhead }

// OpenDynamoDB builds a client, creates the table if asked to and loads
// the meta item. Its errors name the table, the region and the endpoint,
// and the step that failed.
func OpenDynamoDB(ctx context.Context, o DynamoDBOptions) (*DynamoDB, error) {
	if o.Table == "" {
		o.Table = "petrel"
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.TombstoneLag == 0 {
		o.TombstoneLag = 1 << 20
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().Unix() }
	}
	var loadOpts []func(*config.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	// Keep a connection per worker alive between batches (the default
	// keeps fewer and would reconnect on every batch).
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = o.Workers
	})
	loadOpts = append(loadOpts, config.WithRetryMaxAttempts(o.MaxAttempts), config.WithHTTPClient(hc))
	var cfg aws.Config
	err := withStep(ctx, dynamoTarget(o.Table, o.Region, o.Endpoint), "load the AWS configuration", o.Timeout, func(ctx context.Context) (err error) {
		cfg, err = config.LoadDefaultConfig(ctx, loadOpts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(cfg, func(co *dynamodb.Options) {
		if o.Endpoint != "" {
			co.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	d := &DynamoDB{db: db, table: aws.String(o.Table), where: dynamoTarget(o.Table, cfg.Region, o.Endpoint),
		workers: o.Workers, lag: o.TombstoneLag, now: o.Now}
	if o.CreateTable {
		if err := d.createTable(ctx, o.Timeout); err != nil {
			return nil, err
		}
	}
	var m map[string]uint64
	err = withStep(ctx, d.where, "read the meta item", o.Timeout, func(ctx context.Context) (err error) {
		m, err = d.readMeta(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.floor, d.purged = m["floor"], m["purged"]
	if m["pfs"] >= d.floor { // below it, an immediate flush cleared it
		d.pending = flushMark{seq: m["pfs"], at: int64(m["pfa"])}
	}
	return d, nil
}

func (d *DynamoDB) createTable(ctx context.Context, limit time.Duration) error {
	var nf *types.ResourceNotFoundException
	err := withStep(ctx, d.where, "describe the table", limit, func(ctx context.Context) error {
		_, err := d.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: d.table})
		return err
	})
	if err == nil || !errors.As(err, &nf) {
		return err
	}
	err = withStep(ctx, d.where, "create the table", limit, func(ctx context.Context) error {
		_, err := d.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            d.table,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeB}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			return nil // created meanwhile by another server
		}
		return err
	})
	if err != nil {
		return err
	}
	w := dynamodb.NewTableExistsWaiter(d.db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	return withStep(ctx, d.where, "wait for the new table", tableWait, func(ctx context.Context) error {
		return w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: d.table}, tableWait)
	})
}

var metaKey = map[string]types.AttributeValue{"k": &types.AttributeValueMemberB{Value: []byte("m")}}

func itemKey(key []byte) map[string]types.AttributeValue {
	k := make([]byte, 1+len(key))
	k[0] = 'i'
	copy(k[1:], key)
	return map[string]types.AttributeValue{"k": &types.AttributeValueMemberB{Value: k}}
}

func num(v uint64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(v, 10)}
}

func inum(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func (d *DynamoDB) readMeta(ctx context.Context) (map[string]uint64, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: d.table, Key: metaKey, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for name, av := range out.Item {
		if n, ok := av.(*types.AttributeValueMemberN); ok {
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("meta attribute %s: %w", name, err)
			}
			m[name] = uint64(v)
		}
	}
	return m, nil
}

// conditionFailed reports a conditional write that found a newer version
// (or, for a purge, nothing left to remove): the write is already done.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Apply implements Backend.
func (d *DynamoDB) Apply(ctx context.Context, recs []journal.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return withKind(d.apply(ctx, recs), dynamoKind)
}

// dynamoKind classifies an error by its DynamoDB error code.
func dynamoKind(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return "throttled"
		case "InternalServerError", "ServiceUnavailable":
			return "unavailable"
		case "TransactionConflictException":
			return "conflict"
		}
	}
	return "error"
}

func (d *DynamoDB) apply(ctx context.Context, recs []journal.Record) error {
	now := d.now()
	d.mu.Lock()
	floor, purged, pending := d.floor, d.purged, d.pending
	d.mu.Unlock()
	oldFloor := floor
	// A pending flush that has come due stays a marker (pendingFlush).
	f, err := foldRecords(recs, max(floor, purged), now)
	if err != nil {
		return err
	}
	for _, e := range f.effects {
		if e.kind == effectSet && len(e.key)+len(e.value) > d.MaxValueSize() {
			return fmt.Errorf("dynamodb: key %q seq %d: %d-byte value over the %d-byte limit: %w",
				e.key, e.version, len(e.value), d.MaxValueSize(), ErrValueTooLarge)
		}
	}
	floor = max(floor, f.floor)
	if f.pending.seq > pending.seq {
		pending = f.pending
	}
	if pending.seq != 0 && pending.seq < floor {
		pending = flushMark{}
	}
	if floor > oldFloor {
		// The floor is recorded only after the purge, so a purge cut short
		// is redone when the batch is retried.
		err := d.purge(ctx, "#ver < :s", floor)
		if err != nil {
			return fmt.Errorf("dynamodb: flush_all below seq %d: %w", floor, err)
		}
	}
	if err := d.parallel(ctx, len(f.effects), func(i int) error { return d.write(ctx, &f.effects[i]) }); err != nil {
		return err
	}
	if err := d.writeMeta(ctx, f.maxSeq, floor, pending); err != nil {
		return err
	}
	d.mu.Lock()
	d.floor = max(d.floor, floor)
	switch {
	case pending.seq > d.pending.seq:
		d.pending = pending
	case d.pending.seq != 0 && d.pending.seq <= d.floor:
		d.pending = flushMark{}
	}
	due := f.maxSeq > d.lag && f.maxSeq-d.lag >= d.purged+d.lag
	d.mu.Unlock()
	if due {
		// Best effort: a failed purge is retried after the next batch.
		_ = d.PurgeTombstones(ctx, f.maxSeq-d.lag)
	}
	return nil
}

// parallel runs fn(0..n-1) on at most d.workers goroutines and returns the
// first error.
func (d *DynamoDB) parallel(ctx context.Context, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(d.workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// write applies one effect with a version-guarded conditional write.
func (d *DynamoDB) write(ctx context.Context, e *effect) error {
	names := map[string]string{"#k": "k", "#ver": "ver"}
	vals := map[string]types.AttributeValue{":v": num(e.version)}
	var err error
	switch e.kind {
	case effectSet, effectDelete:
		item := itemKey(e.key)
		item["ver"] = num(e.version)
		item["t"] = &types.AttributeValueMemberBOOL{Value: e.kind == effectDelete}
		if e.kind == effectSet {
			item["v"] = &types.AttributeValueMemberB{Value: e.value}
			item["f"] = num(uint64(e.flags))
			item["e"] = inum(e.exptime)
		}
		_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 d.table,
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(#k) OR #ver < :v"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
		})
	case effectTouch:
		names["#e"], names["#t"] = "e", "t"
		vals[":e"], vals[":f"] = inum(e.exptime), &types.AttributeValueMemberBOOL{Value: false}
		_, err = d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 d.table,
			Key:                       itemKey(e.key),
			UpdateExpression:          aws.String("SET #e = :e, #ver = :v"),
			ConditionExpression:       aws.String("attribute_exists(#k) AND #ver < :v AND #t = :f"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
		})
	}
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("dynamodb: write key %q seq %d: %w", e.key, e.version, err)
	}
	return nil
}

// writeMeta raises the applied sequence, the floor and the pending flush.
// Each only goes up, under its own condition: batches applied concurrently
// may finish out of order, and a batch that saw no pending flush,
// committing after one that recorded it, must not write over it. The
// pending flush is never cleared here; a reader ignores one below the
// floor.
func (d *DynamoDB) writeMeta(ctx context.Context, applied, floor uint64, pending flushMark) error {
	if err := d.raiseMeta(ctx, "applied", applied, nil); err != nil {
		return err
	}
	d.mu.Lock()
	oldFloor, oldPending := d.floor, d.pending
	d.mu.Unlock()
	if floor > oldFloor {
		if err := d.raiseMeta(ctx, "floor", floor, nil); err != nil {
			return err
		}
	}
	if pending.seq > oldPending.seq {
		return d.raiseMeta(ctx, "pfs", pending.seq, map[string]int64{"pfa": pending.at})
	}
	return nil
}

// raiseMeta sets the meta item's attribute name to v where it is missing
// or lower, and with it the attributes in also.
func (d *DynamoDB) raiseMeta(ctx context.Context, name string, v uint64, also map[string]int64) error {
	set := "SET #n = :n"
	names := map[string]string{"#n": name}
	values := map[string]types.AttributeValue{":n": num(v)}
	i := 0
	for k, x := range also {
		set += fmt.Sprintf(", #a%d = :a%d", i, i)
		names[fmt.Sprintf("#a%d", i)] = k
		values[fmt.Sprintf(":a%d", i)] = inum(x)
		i++
	}
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 d.table,
		Key:                       metaKey,
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("attribute_not_exists(#n) OR #n < :n"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("dynamodb: write %s %d: %w", name, v, err)
	}
	return nil
}

// purge deletes every item matching cond (with :s bound to seq), each with
// the same condition so that an item rewritten meanwhile survives.
func (d *DynamoDB) purge(ctx context.Context, cond string, seq uint64) error {
	// DynamoDB refuses expression names an expression does not use, so
	// the scan (which projects the key) and the deletes get their own.
	names := map[string]string{"#ver": "ver"}
	scanNames := map[string]string{"#ver": "ver", "#k": "k"}
	vals := map[string]types.AttributeValue{":s": num(seq)}
	if cond != "#ver < :s" {
		names["#t"], scanNames["#t"] = "t", "t"
		vals[":t"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{
		TableName:                 d.table,
		FilterExpression:          aws.String(cond),
		ProjectionExpression:      aws.String("#k"),
		ExpressionAttributeNames:  scanNames,
		ExpressionAttributeValues: vals,
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		err = d.parallel(ctx, len(page.Items), func(i int) error {
			_, err := d.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 d.table,
				Key:                       page.Items[i],
				ConditionExpression:       aws.String(cond),
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: vals,
			})
			if err != nil && !conditionFailed(err) {
				return fmt.Errorf("delete: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// PurgeTombstones deletes tombstones below seq and from then on ignores
// records below seq, so that no older write can resurrect a purged key.
// It scans the whole table; Apply calls it every TombstoneLag sequences.
func (d *DynamoDB) PurgeTombstones(ctx context.Context, seq uint64) error {
	if err := d.purge(ctx, "#t = :t AND #ver < :s", seq); err != nil {
		return fmt.Errorf("dynamodb: purge tombstones below %d: %w", seq, err)
	}
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 d.table,
		Key:                       metaKey,
		UpdateExpression:          aws.String("SET #p = :p"),
		ConditionExpression:       aws.String("attribute_not_exists(#p) OR #p < :p"),
		ExpressionAttributeNames:  map[string]string{"#p": "purged"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": num(seq)},
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("dynamodb: record purge: %w", err)
	}
	d.mu.Lock()
	d.purged = max(d.purged, seq)
	d.mu.Unlock()
	return nil
}

// AppliedSeq implements Backend. Its error names the table: the start
// reads it right after OpenDynamoDB.
func (d *DynamoDB) AppliedSeq(ctx context.Context) (uint64, error) {
	m, err := d.readMeta(ctx)
	if err != nil {
		return 0, stepError(d.where, "read the applied sequence", 0, err)
	}
	return m["applied"], nil
}

// decode turns a stored item into an Item, reporting whether it is live.
func (d *DynamoDB) decode(av map[string]types.AttributeValue, now int64) (Item, bool, error) {
	k, ok := av["k"].(*types.AttributeValueMemberB)
	if !ok || len(k.Value) == 0 || k.Value[0] != 'i' {
		return Item{}, false, nil // the meta item, or not ours
	}
	it := Item{Key: k.Value[1:]}
	var tomb bool
	if t, ok := av["t"].(*types.AttributeValueMemberBOOL); ok {
		tomb = t.Value
	}
	if v, ok := av["v"].(*types.AttributeValueMemberB); ok {
		it.Value = v.Value
	}
	if it.Value == nil {
		it.Value = []byte{}
	}
	if n, ok := av["ver"].(*types.AttributeValueMemberN); ok {
		v, err := strconv.ParseUint(n.Value, 10, 64)
		if err != nil {
			return Item{}, false, fmt.Errorf("dynamodb: item %q: version: %w", it.Key, err)
		}
		it.Version = v
	}
	if n, ok := av["f"].(*types.AttributeValueMemberN); ok {
		v, err := strconv.ParseUint(n.Value, 10, 32)
		if err != nil {
			return Item{}, false, fmt.Errorf("dynamodb: item %q: flags: %w", it.Key, err)
		}
		it.Flags = uint32(v)
	}
	if n, ok := av["e"].(*types.AttributeValueMemberN); ok {
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return Item{}, false, fmt.Errorf("dynamodb: item %q: exptime: %w", it.Key, err)
		}
		it.Exptime = v
	}
	d.mu.Lock()
	floor, pending := d.floor, d.pending
	d.mu.Unlock()
	return it, it.Version >= floor && visible(it.Version, it.Exptime, tomb, pending, now), nil
}

// Get implements Backend with a strongly consistent read.
func (d *DynamoDB) Get(ctx context.Context, key []byte, now int64) (Item, bool, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: d.table, Key: itemKey(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Item{}, false, fmt.Errorf("dynamodb: get %q: %w", key, err)
	}
	if out.Item == nil {
		return Item{}, false, nil
	}
	it, ok, err := d.decode(out.Item, now)
	if !ok || err != nil {
		return Item{}, false, err
	}
	return it, true, nil
}

// Scan implements Backend. Order: the table's (hash) order; DynamoDB keeps
// no cheap index by recency.
func (d *DynamoDB) Scan(ctx context.Context, now int64, fn func(Item) error) error {
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{TableName: d.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return stepError(d.where, "scan", 0, err)
		}
		for _, av := range page.Items {
			it, ok, err := d.decode(av, now)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// PendingFlush implements PendingFlusher.
func (d *DynamoDB) PendingFlush() (uint64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending.above(d.floor)
}

// DropPendingFlush implements PendingFlusher, in memory: the meta
// item follows when the replacing record is applied.
func (d *DynamoDB) DropPendingFlush() {
	d.mu.Lock()
	d.pending = flushMark{}
	d.mu.Unlock()
}

// Close implements Backend.
func (d *DynamoDB) Close() error { return nil }
