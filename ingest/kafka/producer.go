package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/storage"
)

// ErrUnavailable reports a write that Kafka did not acknowledge in time
// (brokers down or unreachable, not enough in-sync replicas). The error
// says when to retry (storage.RetryAfter), and ingest answers 503: the
// write may or may not have reached Kafka, and sending it again is safe.
var ErrUnavailable = errors.New("kafka: write not acknowledged by Kafka")

// retryAfter is what a writer is told to wait after ErrUnavailable.
const retryAfter = 5 * time.Second

type unavailableError struct{ err error }

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%v: %v (Kafka is down, unreachable or short of in-sync replicas; retry in %v)", ErrUnavailable, e.err, retryAfter)
}
func (e *unavailableError) Unwrap() []error           { return []error{ErrUnavailable, e.err} }
func (e *unavailableError) RetryAfter() time.Duration { return retryAfter }

// Options are what a Producer or Consumer needs besides the Config. The
// zero value is usable.
type Options struct {
	// Validate, when set, checks a batch before it is produced (the
	// producer passes storage.DB.Validate): a batch every storage node
	// would refuse is refused at once, with the same error.
	Validate func(tenant string, b *storage.Batch) error
	Logger   *slog.Logger
	Metrics  *Metrics // nil: unregistered metrics
}

func (o *Options) orDefault() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	return d
}

// Producer is the cluster's storage.Writer: Write produces the batch to
// the topic and returns once Kafka acknowledged every record of it.
type Producer struct {
	cl      *kgo.Client
	cfg     Config
	opts    Options
	timeout time.Duration
}

var _ storage.Writer = (*Producer)(nil)

// NewProducer connects to cfg's brokers (cfg must be validated). It makes
// sure the topic exists (EnsureTopic) and fails when Kafka does not answer
// within ctx.
func NewProducer(ctx context.Context, cfg Config, opts *Options) (*Producer, error) {
	o := opts.orDefault()
	cl, err := cfg.newClient(
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent, the default
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.ProducerLinger(0), // a write waits for its acknowledgement: do not add to it
		kgo.RecordDeliveryTimeout(time.Duration(cfg.ProduceTimeout)),
		kgo.WithLogger(kgoLogger(o.Logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	if err := EnsureTopic(ctx, cl, cfg, o.Logger); err != nil {
		cl.Close()
		return nil, err
	}
	return &Producer{cl: cl, cfg: cfg, opts: o, timeout: time.Duration(cfg.ProduceTimeout)}, nil
}

// Close waits for records in flight (at most the produce timeout) and
// disconnects.
func (p *Producer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	_ = p.cl.Flush(ctx)
	p.cl.Close()
}

// Write implements storage.Writer: it validates b, encodes it into the
// records of its partitions and produces them; it returns nil once Kafka
// acknowledged all of them (acks=all: written by every in-sync replica),
// ErrUnavailable when that did not happen within the produce timeout.
//
// NB: after ErrUnavailable, some of the records may still reach Kafka and
// be stored; the sender retries, and storing a sample twice with the same
// timestamp and value is harmless.
func (p *Producer) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	if p.opts.Validate != nil {
		if err := p.opts.Validate(tenant, b); err != nil {
			return err
		}
	}
	recs, err := Encode(tenant, b, p.cfg.Partitions)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var (
		pending  atomic.Int64
		mu       sync.Mutex
		firstErr error
		done     = make(chan struct{})
	)
	pending.Store(int64(len(recs)))
	for _, r := range recs {
		p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			if pending.Add(-1) == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
	case <-ctx.Done():
		// NB: an idempotent producer cannot fail a record it sent and got
		// no answer for; it keeps it and may still deliver it.
		p.opts.Metrics.produceErrors.Inc()
		if parent.Err() == nil {
			return &unavailableError{fmt.Errorf("%d records to topic %s not acknowledged within produce_timeout %v",
				len(recs), p.cfg.Topic, p.timeout)}
		}
		return &unavailableError{fmt.Errorf("%d records to topic %s: %w", len(recs), p.cfg.Topic, context.Cause(parent))}
	}
	mu.Lock()
	err = firstErr
	mu.Unlock()
	if err != nil {
		p.opts.Metrics.produceErrors.Inc()
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return &unavailableError{fmt.Errorf("%d records to topic %s not acknowledged within produce_timeout %v",
				len(recs), p.cfg.Topic, p.timeout)}
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			return fmt.Errorf("%w: a record of the write is over Kafka's limit: %v", limits.ErrTooLarge, err)
		}
		return &unavailableError{fmt.Errorf("produce to topic %s: %w", p.cfg.Topic, err)}
	}
	p.opts.Metrics.produced.Add(float64(len(recs)))
	p.opts.Metrics.produceDuration.Observe(time.Since(start).Seconds())
	return nil
}
