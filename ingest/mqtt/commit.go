package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/emsdb/tsdb/storage"
)

// maxWaiting bounds the messages received but not yet stored: past it the
// handler blocks, so the broker holds the rest.
const maxWaiting = 4096

// committer stores messages in groups (group commit): while one durable
// write is in flight, the messages that arrive wait and go together into
// the next, so a burst costs one fsync instead of one per message. Every
// message is acknowledged, in arrival order, only once the write holding it
// is durable; a message that cannot be stored is never acknowledged and
// the broker redelivers it.
type committer struct {
	s     *Subscriber
	slots chan struct{} // one per waiting message: backpressure

	mu      sync.Mutex
	queue   []*message
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

// message is one received message, decoded.
type message struct {
	topic string
	b     storage.Batch // empty: nothing to store (bad, or matched no subscription)
	ack   func()
}

func newCommitter(s *Subscriber) *committer {
	c := &committer{s: s, slots: make(chan struct{}, maxWaiting), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// add decodes a message and queues it for the next write. After stop the
// message is left unacknowledged: the broker keeps it for the session.
func (c *committer) add(topic string, payload []byte, ack func()) {
	m := &message{topic: topic, ack: ack}
	c.s.decode(topic, payload, &m.b)
	c.slots <- struct{}{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		<-c.slots
		return
	}
	c.queue = append(c.queue, m)
	select { // wake is closed only under mu, by stop
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) loop() {
	defer close(c.done)
	for range c.wake {
		c.drain()
	}
	c.drain() // what came before stop
}

// drain commits what is queued until nothing is.
func (c *committer) drain() {
	for {
		c.mu.Lock()
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		if len(q) == 0 {
			return
		}
		c.s.commit(q)
		for range q {
			<-c.slots
		}
	}
}

// stop stores and acknowledges what is queued, then ends the loop.
func (c *committer) stop() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.wake)
	}
	c.mu.Unlock()
	<-c.done
}

// decode turns a message into samples in b; a message that does not decode
// is counted, logged and leaves b empty (it is acknowledged: redelivering
// it would not help).
func (s *Subscriber) decode(topic string, payload []byte, b *storage.Batch) {
	for i := range s.cfg.Subscriptions {
		sub := &s.cfg.Subscriptions[i]
		if !sub.matches(topic) {
			continue
		}
		if err := sub.Decode(topic, payload, s.nowFunc().UnixMilli(), b); err != nil {
			b.Series = b.Series[:0]
			s.msgs.WithLabelValues("bad").Inc()
			s.log.Warn("mqtt message dropped", "topic", topic, "err", err)
		}
		return
	}
}

func (s *Subscriber) tenant() string {
	if s.cfg.Tenant == "" {
		return "default"
	}
	return s.cfg.Tenant
}

// commit writes the samples of q in one write and acknowledges every
// message in order. When that write fails, one message may have spoiled it
// (a bad series, a limit): the messages are then written one by one, as
// they came, and only those stored (or refused for good) are acknowledged.
func (s *Subscriber) commit(q []*message) {
	var all storage.Batch
	withSamples := 0
	for _, m := range q {
		if len(m.b.Series) > 0 {
			all.Series = append(all.Series, m.b.Series...)
			withSamples++
		}
	}
	if withSamples == 0 {
		for _, m := range q {
			m.ack()
		}
		return
	}
	if err := s.w.Write(context.Background(), s.tenant(), &all); err == nil {
		s.msgs.WithLabelValues("stored").Add(float64(withSamples))
		for _, m := range q {
			m.ack()
		}
		return
	}
	for _, m := range q {
		ack, err := s.writeOne(m)
		if err != nil {
			s.log.Error("mqtt message not stored; the broker will redeliver it", "topic", m.topic, "err", err)
		}
		if ack {
			m.ack()
		}
	}
}

// writeOne writes one message's samples. ack is false only when a retry
// can help (the broker keeps the message).
func (s *Subscriber) writeOne(m *message) (ack bool, err error) {
	if len(m.b.Series) == 0 {
		return true, nil
	}
	if err := s.w.Write(context.Background(), s.tenant(), &m.b); err != nil {
		if errors.Is(err, storage.ErrInvalidSeries) || errors.Is(err, storage.ErrInvalidSample) || errors.Is(err, storage.ErrTooManySeries) {
			s.msgs.WithLabelValues("bad").Inc()
			s.log.Warn("mqtt message rejected by storage", "topic", m.topic, "err", err)
			return true, nil
		}
		s.msgs.WithLabelValues("failed").Inc()
		return false, fmt.Errorf("store: %w", err)
	}
	s.msgs.WithLabelValues("stored").Inc()
	return true, nil
}
