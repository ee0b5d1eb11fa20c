package web

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestTenantQueryConcurrency(t *testing.T) {
	a := &queries{slots: make(chan struct{}, 8), running: map[string]int{}, tenantLimit: func(tenant string) int {
		if tenant == "small" {
			return 2
		}
		return 0
	}}
	ctx := context.Background()
	r1, err := a.acquire(ctx, "small")
	require.NoError(t, err)
	r2, err := a.acquire(ctx, "small")
	require.NoError(t, err)
	_, err = a.acquire(ctx, "small")
	require.Error(t, err)
	typ, code := classify(err)
	require.Equal(t, fasthttp.StatusTooManyRequests, code)
	require.Equal(t, "too_many_requests", typ)
	require.Contains(t, err.Error(), "max_query_concurrency")
	r3, err := a.acquire(ctx, "other")
	require.NoError(t, err, "other tenants are not held back")
	r1()
	r4, err := a.acquire(ctx, "small")
	require.NoError(t, err, "a finished query frees its tenant's slot")
	for _, r := range []func(){r2, r3, r4} {
		r()
	}
	require.Empty(t, a.slots, "global slots all returned")
}
