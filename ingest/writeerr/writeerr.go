// Package writeerr maps what storage and the ingest limits say about a
// write to the HTTP answer every ingest endpoint gives: 400 when retrying
// cannot help, 413 for a request too large to ever be taken, 429 with
// Retry-After when the tenant is over its ingestion rate, 503 (with
// Retry-After when the ingest memory budget is full) otherwise.
package writeerr

import (
	"errors"
	"math"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/storage"
)

// Status is the HTTP status for a failed write.
func Status(err error) int {
	switch {
	case errors.Is(err, storage.ErrRateLimited):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, limits.ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, storage.ErrInvalidSeries), errors.Is(err, storage.ErrInvalidSample),
		errors.Is(err, storage.ErrTooManySeries):
		return fasthttp.StatusBadRequest
	default:
		return fasthttp.StatusServiceUnavailable
	}
}

// Answer sets the status of a failed write and, for 429 and a 503 that
// says when to retry, Retry-After in whole seconds (at least 1); it
// returns the status.
func Answer(ctx *fasthttp.RequestCtx, err error) int {
	code := Status(err)
	ctx.SetStatusCode(code)
	if code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable {
		RetryAfter(ctx, err)
	}
	return code
}

// RetryAfter sets Retry-After, in whole seconds (at least 1), when err says
// when to retry; it does nothing otherwise.
func RetryAfter(ctx *fasthttp.RequestCtx, err error) {
	after := storage.RetryAfter(err)
	if after <= 0 && Status(err) != fasthttp.StatusTooManyRequests {
		return
	}
	secs := int(math.Ceil(after.Seconds()))
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(max(secs, 1)))
}
