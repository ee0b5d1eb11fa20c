// Package outbox delivers events to receivers at least once and in order,
// across restarts: the transactional-outbox pattern over a small
// key-value store (storage.DB's PutKV/DeleteKV/ListKV). The ITSM layer
// (ticketing webhooks) and the ruler's Alertmanager notifier both deliver
// through it.
//
// Each receiver is a queue with one goroutine. Enqueue stores the item
// before it returns; the queue's goroutine hands the oldest item to the
// Deliver function and deletes it only when Deliver returns nil. An error
// is retried with exponential backoff and jitter (MinBackoff doubling to
// MaxBackoff); an error wrapped with Permanent drops the item. Later items
// wait behind the oldest: a receiver sees its events in the order they
// were enqueued. Close cancels the attempt in flight and returns at once;
// what was not delivered is delivered after the next Open.
//
// # Keys
//
// Under Options.Prefix:
//
//	<queue>/<seq: 20 decimal digits>  JSON {"event": …, "id": …, "body": base64}, one undelivered item
//	seq                               decimal: the sequence numbers handed out are at most this (a lease)
//
// Sequence numbers are unique forever within an outbox, across restarts
// and queues, so the idempotency key made from one (Item.ID) never names
// two different events. Open continues above both the lease and the
// highest stored item, and stores a new lease LeaseSize numbers ahead
// before handing any out; a crash skips at most LeaseSize numbers. An
// outbox without a lease (new, or written before leases existed, whose
// counter restarted at 1 with every start) starts at the current Unix
// time in microseconds, above any such counter. Items whose queue is no
// longer configured stay stored, untouched, until it is configured again.
//
// Example:
//
//	ob, err := outbox.Open(db, outbox.Options{Prefix: "itsm/outbox/", Queues: []string{"pd"},
//		Deliver: func(ctx context.Context, it outbox.Item) error { return post(ctx, it.Queue, it.ID, it.Body) }})
//	it, err := ob.Enqueue("pd", "opened", "acme/INC-000001/opened", body) // it.ID: "acme/INC-000001/opened/<seq>"
//	ob.Close()
package outbox
