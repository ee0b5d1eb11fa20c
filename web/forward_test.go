package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A follower forwards the leader-only routes to the leader as they came
// (method, path, query, body, credentials and tenant) and answers what
// the leader answered; without a leader it answers 503 with Retry-After,
// and a forwarded request reaching a node that does not lead is refused
// rather than forwarded again. The other routes are served locally.
func TestForwardToLeader(t *testing.T) {
	type seen struct {
		method, uri, body, auth, tenant, by, xff string
	}
	got := make(chan seen, 1)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID"),
			r.Header.Get(ForwardedByHeader), r.Header.Get("X-Forwarded-For")}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Leader", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"status":"success","data":{"id":"INC-1"}}`))
	}))
	defer leader.Close()
	m, err := itsm.New(itsm.Config{}, st.Open(t, nil), nil, time.Now)
	require.NoError(t, err)
	defer m.Close()
	var to func(context.Context) (string, error)
	api := New(Deps{ITSM: m, Node: "zone-a/n2", Leader: func(ctx context.Context) (string, error) { return to(ctx) }})
	do := func(method, uri, body string, headers ...string) *fasthttp.Response {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		for i := 0; i+1 < len(headers); i += 2 {
			ctx.Request.Header.Set(headers[i], headers[i+1])
		}
		ctx.Request.SetBodyString(body)
		api.Handler(&ctx)
		var r fasthttp.Response
		ctx.Response.CopyTo(&r)
		return &r
	}

	to = func(context.Context) (string, error) { return leader.URL, nil }
	resp := do("POST", "/api/v1/incidents/INC-1/ack?note=x", `{"by":"kim"}`, "Authorization", "Basic a2ltOnB3", "X-Scope-OrgID", "acme",
		"Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "yes", string(resp.Header.Peek("X-Leader")))
	require.Equal(t, "application/json", string(resp.Header.ContentType()))
	require.JSONEq(t, `{"status":"success","data":{"id":"INC-1"}}`, string(resp.Body()))
	s := <-got
	require.Equal(t, seen{"POST", "/api/v1/incidents/INC-1/ack?note=x", `{"by":"kim"}`, "Basic a2ltOnB3", "acme", "zone-a/n2", "0.0.0.0"}, s)

	// A KPI read and the alerts' state go to the leader too; a query does not.
	do("GET", "/api/v1/kpis", "")
	require.Equal(t, "/api/v1/kpis", (<-got).uri)

	// No leader known: 503 with Retry-After, the reason in the body.
	to = func(context.Context) (string, error) {
		return "", fmt.Errorf("%w: none is known now", storage.ErrUnavailable)
	}
	resp = do("GET", "/api/v1/incidents", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "none is known now")

	// A forwarded request that reaches a node that does not lead.
	to = func(context.Context) (string, error) { return leader.URL, nil }
	resp = do("GET", "/api/v1/incidents", "", ForwardedByHeader, "zone-a/n1")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode())
	require.NotEmpty(t, resp.Header.Peek("Retry-After"))
	require.Contains(t, string(resp.Body()), "zone-a/n1 forwarded this request")
	require.Empty(t, got)

	// The leader down: 503 naming it.
	to = func(context.Context) (string, error) { return "http://127.0.0.1:1", nil }
	resp = do("GET", "/api/v1/incidents", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "leader at http://127.0.0.1:1")

	// On the leader itself: served here.
	to = func(context.Context) (string, error) { return "", nil }
	resp = do("GET", "/api/v1/incidents", "")
	require.Equal(t, http.StatusOK, resp.StatusCode(), string(resp.Body()))
	require.Empty(t, got)
}
