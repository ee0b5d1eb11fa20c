package kafka

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// refreshTimeout bounds one description of the zones' groups (Refresh).
const refreshTimeout = 5 * time.Second

// kafkaSeen is the outcome of the last look at Kafka.
type kafkaSeen struct {
	ok  time.Time // the last time Kafka answered
	err error     // the last look's error; nil when Kafka answered it
}

// catchUp is the end offset a partition must be written up to before its
// owner counts as caught up, and when it was listed.
type catchUp struct {
	start  int64 // the partition's log start then: an end at it means nothing to read
	end    int64
	listed time.Time
	done   bool // written up to end: it stays caught up while owned
}

// sawKafkaLocked records the outcome of a refresh that began at began and
// ended at now: whether Kafka answered, and for each partition this node
// was assigned before began, the end offset to catch up to.
func (r *Registry) sawKafkaLocked(began, now time.Time, lags kadm.DescribedGroupLags, err error) {
	if err == nil {
		if l, ok := lags[r.cfg.Group()]; ok {
			if e := l.Error(); e != nil && !errors.Is(e, kerr.GroupIDNotFound) {
				err = fmt.Errorf("describe group %s: %w", l.Group, e)
			}
		}
	}
	if err != nil {
		r.mu.kafka.err = err
		return
	}
	r.mu.kafka = kafkaSeen{ok: now}
	if r.cons == nil {
		return
	}
	assigned := r.cons.Assigned()
	for p := range r.mu.target {
		if _, ok := assigned[p]; !ok {
			delete(r.mu.target, p)
		}
	}
	ends := lags[r.cfg.Group()].Lag[r.cfg.Topic]
	for p, at := range assigned {
		if t, ok := r.mu.target[p]; ok && !t.listed.Before(at) {
			continue // listed since this assignment
		}
		ml, ok := ends[p]
		if !ok || began.Before(at) || ml.End.Err != nil {
			continue // the next refresh lists it
		}
		start := ml.End.Offset
		if ml.Start.Err == nil {
			start = ml.Start.Offset
		}
		r.mu.target[p] = catchUp{start: start, end: ml.End.Offset, listed: began, done: ml.End.Offset <= start}
	}
}

// kafkaStale is how long after Kafka last answered a node stops counting
// it reachable, even when no refresh has failed yet (one hangs).
const kafkaStale = refreshEvery + refreshTimeout + time.Second

// Ready returns nil when this node can serve as a member of the cluster,
// else why not: Kafka did not answer its last look (writes would get
// 503), or it has not yet written a partition assigned to it up to the
// end offset Kafka listed after the assignment (its reads of it would
// miss samples a strong read would wait for). Once caught up, a
// partition stays so while this node owns it.
func (r *Registry) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.mu.kafka
	switch {
	case seen.err != nil:
		return fmt.Errorf("cluster: Kafka is not reachable (%v); writes get 503 until it is", seen.err)
	case seen.ok.IsZero():
		return errors.New("cluster: Kafka has not answered yet")
	case r.now().Sub(seen.ok) > kafkaStale:
		return fmt.Errorf("cluster: Kafka has not answered for %v", r.now().Sub(seen.ok).Round(time.Second))
	}
	if r.cons == nil {
		return nil
	}
	var behind []string
	assigned := r.cons.Assigned()
	for _, p := range slices.Sorted(maps.Keys(assigned)) {
		at := assigned[p]
		t, ok := r.mu.target[p]
		if !ok || t.listed.Before(at) {
			behind = append(behind, fmt.Sprintf("%d (end offset not listed yet)", p))
			continue
		}
		if t.done {
			continue
		}
		if pos := r.cons.Position(p); pos < t.end {
			behind = append(behind, fmt.Sprintf("%d (at offset %d of %d)", p, max(pos, 0), t.end))
			continue
		}
		t.done = true
		r.mu.target[p] = t
	}
	if len(behind) > 0 {
		return fmt.Errorf("cluster: catching up partitions %s from Kafka", strings.Join(behind, ", "))
	}
	return nil
}
