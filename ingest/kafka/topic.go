package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopic creates cfg's topic when it is missing: cfg.Partitions
// partitions, cfg.ReplicationFactor replicas (capped to the number of
// brokers), min.insync.replicas 2 when there are 3 replicas or more (so
// that acks=all means two copies at least), and records up to
// MaxRecordBytes. An existing topic with fewer partitions than cfg's is an
// error; one with more is used, its extra partitions left empty.
func EnsureTopic(ctx context.Context, cl *kgo.Client, cfg Config, log *slog.Logger) error {
	adm := kadm.NewClient(cl)
	for range 2 { // twice: another node may create it between our look and our create
		topics, err := adm.ListTopics(ctx, cfg.Topic)
		if err != nil {
			return fmt.Errorf("kafka: list topic %s on %v: %w", cfg.Topic, cfg.Brokers, err)
		}
		if td, ok := topics[cfg.Topic]; ok && td.Err == nil {
			if n := len(td.Partitions); n < cfg.Partitions {
				return fmt.Errorf("kafka: topic %s has %d partitions, fewer than the %d of cluster.partitions: series would not find theirs", cfg.Topic, n, cfg.Partitions)
			} else if n > cfg.Partitions {
				log.Warn("the Kafka topic has more partitions than cluster.partitions; the extra ones stay empty", "topic", cfg.Topic, "partitions", n, "used", cfg.Partitions)
			}
			return nil
		} else if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("kafka: topic %s: %w", cfg.Topic, td.Err)
		}
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			return fmt.Errorf("kafka: list brokers: %w", err)
		}
		rf := min(cfg.ReplicationFactor, len(brokers))
		isr := strconv.Itoa(min(rf, 2))
		maxBytes := strconv.Itoa(MaxRecordBytes)
		resp, err := adm.CreateTopic(ctx, int32(cfg.Partitions), int16(rf), map[string]*string{
			"min.insync.replicas": &isr,
			"max.message.bytes":   &maxBytes,
		}, cfg.Topic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("kafka: create topic %s: %w", cfg.Topic, err)
		}
		log.Info("created the Kafka topic", "topic", cfg.Topic, "partitions", cfg.Partitions, "replication_factor", rf, "min_insync_replicas", isr)
		return nil
	}
	return fmt.Errorf("kafka: topic %s: created by another client but not listed", cfg.Topic)
}

// kgoLogger passes franz-go's warnings and errors to log.
func kgoLogger(log *slog.Logger) kgo.Logger { return slogAdapter{log.With("component", "kafka")} }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		a.l.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		a.l.Warn(msg, keyvals...)
	default:
		a.l.Debug(msg, keyvals...)
	}
}
