package apptest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Clock is a clock tests set and move (SLA, escalation and retry
// timers); safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass the method value as a component's clock.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Receiver is a webhook receiver on 127.0.0.1 that records the JSON
// bodies it is sent; it answers 503 to the first Failures requests.
type Receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	bodies   []map[string]any
	Failures atomic.Int32
}

// NewReceiver starts a receiver that fails its first failures requests;
// it stops when the test ends.
func NewReceiver(t testing.TB, failures int32) *Receiver {
	r := &Receiver{}
	r.Failures.Store(failures)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.Failures.Add(-1) >= 0 {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		r.mu.Lock()
		r.bodies = append(r.bodies, m)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the receiver's address.
func (r *Receiver) URL() string { return r.srv.URL }

// Close stops the receiver (it refuses connections from then on).
func (r *Receiver) Close() { r.srv.Close() }

// Got returns a copy of the bodies received so far.
func (r *Receiver) Got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// Jira answers like Jira's REST API v2: creating an issue returns a key,
// transitions and comments 204 (409 for the first Fail of them); it
// records each call.
type Jira struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []string
	auth  []string
	Fail  atomic.Int32
}

// NewJira starts a Jira stand-in that stops when the test ends.
func NewJira(t testing.TB) *Jira {
	j := &Jira{}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		u, p, _ := req.BasicAuth()
		j.mu.Lock()
		j.calls = append(j.calls, req.URL.Path+" "+string(b))
		j.auth = append(j.auth, u+":"+p)
		j.mu.Unlock()
		switch {
		case req.URL.Path == "/rest/api/2/issue":
			_, _ = w.Write([]byte(`{"id":"10001","key":"OPS-1","self":"x"}`))
		case j.Fail.Add(-1) >= 0:
			http.Error(w, "transition not allowed yet", http.StatusConflict)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(j.srv.Close)
	return j
}

// URL is the stand-in's address.
func (j *Jira) URL() string { return j.srv.URL }

// Close stops the stand-in.
func (j *Jira) Close() { j.srv.Close() }

// Calls returns each call so far as "path body".
func (j *Jira) Calls() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.calls...)
}

// Auth returns each call's basic-auth "user:password".
func (j *Jira) Auth() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.auth...)
}
