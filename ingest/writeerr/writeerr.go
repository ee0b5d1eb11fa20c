// Package writeerr maps what storage says about a write to the HTTP answer
// every ingest endpoint gives: 400 when retrying cannot help, 429 with
// Retry-After when the tenant is over its ingestion rate, 503 otherwise.
package writeerr

import (
	"errors"
	"math"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/storage"
)

// Status is the HTTP status for a failed write.
func Status(err error) int {
	switch {
	case errors.Is(err, storage.ErrRateLimited):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, storage.ErrInvalidSeries), errors.Is(err, storage.ErrInvalidSample),
		errors.Is(err, storage.ErrTooManySeries):
		return fasthttp.StatusBadRequest
	default:
		return fasthttp.StatusServiceUnavailable
	}
}

// Answer sets the status of a failed write and, for 429, Retry-After in
// whole seconds (at least 1); it returns the status.
func Answer(ctx *fasthttp.RequestCtx, err error) int {
	code := Status(err)
	ctx.SetStatusCode(code)
	if code == fasthttp.StatusTooManyRequests {
		secs := int(math.Ceil(storage.RetryAfter(err).Seconds()))
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	return code
}
