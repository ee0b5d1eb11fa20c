package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// ForwardedByHeader marks a request that a node of a cluster forwarded
// to the leader (its value names the node). The leader serves it; a node
// that does not lead (the leadership just moved) refuses it with 503
// rather than forward it again.
const ForwardedByHeader = "X-Tsdb-Forwarded-By"

// forwardTimeout bounds one forwarded request, answer included.
const forwardTimeout = 30 * time.Second

// maxForwardedAnswer bounds the answer of a forwarded request held in
// memory (an SLA report, an incident list).
const maxForwardedAnswer = 64 << 20

// proxied is the leader's answer to a forwarded request, passed on as
// it came (the router audits nothing for it: the leader did).
type proxied struct {
	code   int
	header http.Header
	b      []byte
}

// hopHeaders are not passed on by a proxy (RFC 9110, 7.6.1), nor are
// those the HTTP client sets itself.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Accept-Encoding": true, "Content-Encoding": true,
}

// forwarder sends the leader-only routes of a follower to the leader
// (docs/cluster.md): ITSM, KPIs, rules' and alerts' state.
type forwarder struct {
	// to returns the leader's base URL, "" when this node serves the
	// request itself, or an error wrapping storage.ErrUnavailable.
	to     func(ctx context.Context) (string, error)
	self   string
	client *http.Client
}

func newForwarder(to func(ctx context.Context) (string, error), self string) *forwarder {
	if to == nil {
		return nil
	}
	return &forwarder{to: to, self: self, client: &http.Client{
		Timeout:       forwardTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// wrap serves h here on the leader (or a single node) and forwards the
// request to the leader elsewhere.
func (f *forwarder) wrap(h Handler) Handler {
	if f == nil || h == nil {
		return h
	}
	return func(r *Request) (any, error) {
		url, err := f.to(r.Ctx)
		if err != nil {
			return nil, err
		}
		if url == "" {
			return h(r)
		}
		if by := r.Header(ForwardedByHeader); by != "" {
			return nil, unavailable("%s forwarded this request to this node as the cluster's leader, but it does not lead now "+
				"(the leadership is moving); retry shortly", by)
		}
		return f.forward(r, url)
	}
}

// forward sends r to the leader at base and returns its answer.
func (f *forwarder) forward(r *Request, base string) (any, error) {
	// NB: not r.Ctx, which fasthttp cancels only when the server shuts
	// down (and which is unusable outside a server); the shutdown waits
	// for requests in flight, forwardTimeout bounds this one.
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	target := base + string(r.Ctx.Path())
	if q := r.Ctx.URI().QueryString(); len(q) > 0 {
		target += "?" + string(q)
	}
	req, err := http.NewRequestWithContext(ctx, string(r.Ctx.Method()), target, bytes.NewReader(r.Ctx.Request.Body()))
	if err != nil {
		return nil, fmt.Errorf("forward to the leader: %w", err)
	}
	for k, v := range r.Ctx.Request.Header.All() {
		name := http.CanonicalHeaderKey(string(k))
		if !hopHeaders[name] {
			req.Header.Add(name, string(v))
		}
	}
	req.Header.Set(ForwardedByHeader, f.self)
	xff := r.Ctx.RemoteIP().String()
	if prior := r.Header("X-Forwarded-For"); prior != "" {
		xff = prior + ", " + xff
	}
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, unavailable("this node forwards the request to the cluster's leader at %s, which did not answer: %v; retry shortly", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedAnswer+1))
	if err != nil {
		return nil, unavailable("the leader at %s did not finish its answer: %v; retry shortly", base, err)
	}
	if len(b) > maxForwardedAnswer {
		return nil, fmt.Errorf("the leader's answer is over %d bytes; ask the leader at %s", maxForwardedAnswer, base)
	}
	return proxied{code: resp.StatusCode, header: resp.Header, b: b}, nil
}

// respondProxied answers the leader's answer.
func respondProxied(ctx *fasthttp.RequestCtx, p proxied) {
	ctx.SetStatusCode(p.code)
	for k, vs := range p.header {
		if hopHeaders[k] || strings.EqualFold(k, "Date") || strings.EqualFold(k, "Server") {
			continue
		}
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	ctx.SetBody(p.b)
}
