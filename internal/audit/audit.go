package audit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store is where the log keeps its pages: the database's small-document
// store (storage.DB), or outbox.MemStore in tests.
type Store interface {
	PutKV(key string, value []byte) error
	DeleteKV(key string) error
	ListKV(prefix string) (map[string][]byte, error)
}

// Entry is one change made through the API.
type Entry struct {
	At     time.Time `json:"at"`
	Tenant string    `json:"tenant"`
	// User is the authenticated user's name, or "anonymous" while
	// authentication is off.
	User string `json:"user"`
	// Addr is the client's IP address; ForwardedFor what the request's
	// X-Forwarded-For header claims (not verified).
	Addr         string `json:"addr"`
	ForwardedFor string `json:"forwarded_for,omitempty"`
	// Action is what was done, as <kind>.<verb> (incident.ack,
	// maintenance.change, admin.delete_series, config.reload).
	Action string `json:"action"`
	// Kind and Object name what was changed (incident INC-000012,
	// maintenance db-patch); Object may be empty (config reload).
	Kind    string `json:"kind"`
	Object  string `json:"object,omitempty"`
	Summary string `json:"summary"`
}

// Options tune the log; a nil *Options or a zero field means the default.
type Options struct {
	// MaxEntries is how many entries a tenant keeps at least (default
	// 100,000); older ones go a page at a time.
	MaxEntries int
	// MaxAge is how long an entry is kept (default 90 days).
	MaxAge time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Defaults.
const (
	DefaultMaxEntries = 100_000
	DefaultMaxAge     = 90 * 24 * time.Hour
	// PageSize is how many entries one stored page holds.
	PageSize = 256
	// DefaultLimit and MaxLimit bound what one query returns.
	DefaultLimit = 100
	MaxLimit     = 10_000
)

const keyPrefix = "audit/"

// page is what the log remembers of a stored page.
type page struct {
	n           int64
	count       int
	first, last time.Time
}

type tenantLog struct {
	pages []page  // oldest first; the last is cur's
	cur   []Entry // the newest page's entries
}

// Log is the audit log. Its methods are safe for concurrent use.
type Log struct {
	st   Store
	opts Options

	mu struct {
		sync.Mutex
		tenants map[string]*tenantLog
	}
}

// Open loads the index of the stored pages and applies retention.
func Open(st Store, o *Options) (*Log, error) {
	l := &Log{st: st}
	if o != nil {
		l.opts = *o
	}
	if l.opts.MaxEntries <= 0 {
		l.opts.MaxEntries = DefaultMaxEntries
	}
	if l.opts.MaxAge <= 0 {
		l.opts.MaxAge = DefaultMaxAge
	}
	if l.opts.Logger == nil {
		l.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if l.opts.Now == nil {
		l.opts.Now = time.Now
	}
	l.mu.tenants = map[string]*tenantLog{}
	all, err := st.ListKV(keyPrefix)
	if err != nil {
		return nil, fmt.Errorf("audit: load: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range all {
		esc, num, ok := strings.Cut(strings.TrimPrefix(k, keyPrefix), "/")
		tenant, err1 := url.PathUnescape(esc)
		n, err2 := strconv.ParseInt(num, 10, 64)
		var es []Entry
		if !ok || err1 != nil || err2 != nil || json.Unmarshal(v, &es) != nil || len(es) == 0 {
			l.opts.Logger.Warn("audit: stored page ignored", "key", k)
			continue
		}
		tl := l.tenantLocked(tenant)
		tl.pages = append(tl.pages, page{n: n, count: len(es), first: es[0].At, last: es[len(es)-1].At})
		if n == maxPage(tl.pages) { // the newest page so far
			tl.cur = es
		}
	}
	for tenant, tl := range l.mu.tenants {
		sort.Slice(tl.pages, func(i, j int) bool { return tl.pages[i].n < tl.pages[j].n })
		l.pruneLocked(tenant, tl)
	}
	return l, nil
}

func maxPage(ps []page) int64 {
	n := ps[0].n
	for _, p := range ps {
		n = max(n, p.n)
	}
	return n
}

func (l *Log) tenantLocked(tenant string) *tenantLog {
	tl := l.mu.tenants[tenant]
	if tl == nil {
		tl = &tenantLog{}
		l.mu.tenants[tenant] = tl
	}
	return tl
}

func pageKey(tenant string, n int64) string {
	return fmt.Sprintf("%s%s/%012d", keyPrefix, url.PathEscape(tenant), n)
}

// Record appends e to its tenant's log (At defaults to now). It returns
// once the entry is stored; on an error nothing is recorded.
func (l *Log) Record(e Entry) error {
	if e.At.IsZero() {
		e.At = l.opts.Now()
	}
	if e.Tenant == "" {
		return fmt.Errorf("audit: entry %s without a tenant", e.Action)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tl := l.tenantLocked(e.Tenant)
	fresh := len(tl.pages) == 0 || len(tl.cur) >= PageSize
	cur := tl.cur
	var n int64
	if fresh {
		cur = nil
		if len(tl.pages) > 0 {
			n = tl.pages[len(tl.pages)-1].n + 1
		}
	} else {
		n = tl.pages[len(tl.pages)-1].n
	}
	cur = append(cur[:len(cur):len(cur)], e) // a new array: tl.cur stays as stored if the write fails
	b, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	if err := l.st.PutKV(pageKey(e.Tenant, n), b); err != nil {
		l.opts.Logger.Error("audit: entry not recorded", "tenant", e.Tenant, "action", e.Action, "object", e.Object, "user", e.User, "err", err)
		return fmt.Errorf("audit: store: %w", err)
	}
	tl.cur = cur
	p := page{n: n, count: len(cur), first: cur[0].At, last: e.At}
	if fresh {
		tl.pages = append(tl.pages, p)
	} else {
		tl.pages[len(tl.pages)-1] = p
	}
	l.pruneLocked(e.Tenant, tl)
	return nil
}

// pruneLocked deletes the oldest pages past retention: while the tenant
// keeps MaxEntries without the oldest page, or its newest entry is older
// than MaxAge. The newest page always stays. The caller holds l.mu.
func (l *Log) pruneLocked(tenant string, tl *tenantLog) {
	total := 0
	for _, p := range tl.pages {
		total += p.count
	}
	cutoff := l.opts.Now().Add(-l.opts.MaxAge)
	for len(tl.pages) > 1 {
		p := tl.pages[0]
		if total-p.count < l.opts.MaxEntries && !p.last.Before(cutoff) {
			return
		}
		if err := l.st.DeleteKV(pageKey(tenant, p.n)); err != nil {
			l.opts.Logger.Warn("audit: old page not deleted", "tenant", tenant, "page", p.n, "err", err)
			return
		}
		total -= p.count
		tl.pages = tl.pages[1:]
	}
}

// Query selects entries of one tenant. Zero fields select everything.
type Query struct {
	// Start and End bound the entries' time, both inclusive.
	Start, End time.Time
	// User is the user's name, exactly.
	User string
	// Action is an action (incident.ack) or its kind (incident).
	Action string
	// Object is an object's id or name (INC-000012), or a kind (incident).
	Object string
	// Limit is how many entries to return (default DefaultLimit, at most
	// MaxLimit).
	Limit int
}

func (q *Query) match(e *Entry, cutoff time.Time) bool {
	switch {
	case e.At.Before(cutoff), !q.Start.IsZero() && e.At.Before(q.Start), !q.End.IsZero() && e.At.After(q.End):
		return false
	case q.User != "" && e.User != q.User:
		return false
	case q.Action != "" && e.Action != q.Action && !strings.HasPrefix(e.Action, q.Action+"."):
		return false
	case q.Object != "" && e.Object != q.Object && e.Kind != q.Object:
		return false
	}
	return true
}

// Query returns the tenant's entries that q selects, newest first. The
// slice is the caller's.
func (l *Log) Query(tenant string, q Query) ([]Entry, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	cutoff := l.opts.Now().Add(-l.opts.MaxAge)
	l.mu.Lock()
	tl := l.mu.tenants[tenant]
	var pages []page
	var cur []Entry
	if tl != nil {
		pages, cur = append([]page(nil), tl.pages...), tl.cur
	}
	l.mu.Unlock()
	out := []Entry{}
	for i := len(pages) - 1; i >= 0 && len(out) < q.Limit; i-- {
		p := pages[i]
		if (!q.Start.IsZero() && p.last.Before(q.Start)) || p.last.Before(cutoff) {
			break // pages are in time order
		}
		if !q.End.IsZero() && p.first.After(q.End) {
			continue
		}
		es := cur
		if i < len(pages)-1 {
			var err error
			if es, err = l.readPage(tenant, p.n); err != nil {
				return nil, err
			}
		}
		for j := len(es) - 1; j >= 0 && len(out) < q.Limit; j-- {
			if q.match(&es[j], cutoff) {
				out = append(out, es[j])
			}
		}
	}
	return out, nil
}

// readPage reads one stored page; a page retention deleted meanwhile
// reads as empty.
func (l *Log) readPage(tenant string, n int64) ([]Entry, error) {
	k := pageKey(tenant, n)
	m, err := l.st.ListKV(k)
	if err != nil {
		return nil, fmt.Errorf("audit: read page %d: %w", n, err)
	}
	var es []Entry
	if v, ok := m[k]; ok {
		if err := json.Unmarshal(v, &es); err != nil {
			return nil, fmt.Errorf("audit: page %d of %s is corrupt: %w", n, tenant, err)
		}
	}
	return es, nil
}
