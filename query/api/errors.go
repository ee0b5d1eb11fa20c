package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Prometheus' error types, as its API returns them in "errorType".
const (
	errBadData     = "bad_data"
	errExecution   = "execution"
	errTimeout     = "timeout"
	errCanceled    = "canceled"
	errUnavailable = "unavailable"
	errInternal    = "internal"
	errTooMany     = "too_many_requests"
)

// apiError is an error with the Prometheus error type it maps to.
type apiError struct {
	typ string
	err error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badData(format string, args ...any) error {
	return &apiError{typ: errBadData, err: fmt.Errorf(format, args...)}
}

// classify maps an error to its Prometheus error type and HTTP status.
func classify(err error) (string, int) {
	var ae *apiError
	var qe *query.Error
	switch {
	case errors.As(err, &ae):
		return ae.typ, statusOfType(ae.typ)
	case errors.As(err, &qe):
		return string(qe.Type), statusOfType(string(qe.Type))
	case errors.Is(err, query.ErrBadSelector), errors.Is(err, tenancy.ErrInvalid),
		errors.Is(err, storage.ErrInvalidSeries), errors.Is(err, storage.ErrInvalidSample):
		return errBadData, fasthttp.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout, fasthttp.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return errCanceled, 499
	case errors.Is(err, storage.ErrClosed):
		return errUnavailable, fasthttp.StatusServiceUnavailable
	default:
		return errInternal, fasthttp.StatusInternalServerError
	}
}

func statusOfType(typ string) int {
	switch typ {
	case errBadData:
		return fasthttp.StatusBadRequest
	case errExecution:
		return fasthttp.StatusUnprocessableEntity
	case errTimeout, errUnavailable:
		return fasthttp.StatusServiceUnavailable
	case errCanceled:
		return 499
	case errTooMany:
		return fasthttp.StatusTooManyRequests
	default:
		return fasthttp.StatusInternalServerError
	}
}

// writeError answers with Prometheus' error envelope.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	typ, status := classify(err)
	b := []byte(`{"status":"error","errorType":"`)
	b = append(b, typ...)
	b = append(b, `","error":`...)
	b = appendJSONString(b, err.Error())
	b = append(b, "}\n"...)
	ctx.Response.Reset()
	if status == fasthttp.StatusTooManyRequests {
		ctx.Response.Header.Set("Retry-After", "1") // queries are short: a second is plenty
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// writeData answers with Prometheus' success envelope around data, which
// must already be JSON.
func writeData(ctx *fasthttp.RequestCtx, data []byte) {
	ctx.SetContentType("application/json")
	b := append([]byte(`{"status":"success","data":`), data...)
	ctx.SetBody(append(b, "}\n"...))
}
