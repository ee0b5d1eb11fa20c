package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Error types, as the Prometheus API returns them in "errorType", plus
// the few the other APIs need.
const (
	errBadData      = "bad_data"
	errExecution    = "execution"
	errTimeout      = "timeout"
	errCanceled     = "canceled"
	errUnavailable  = "unavailable"
	errInternal     = "internal"
	errTooMany      = "too_many_requests"
	errNotFound     = "not_found"
	errUnauthorized = "unauthorized"
	errForbidden    = "forbidden"
)

// statusClientClosed is the status of a request whose client went away
// (nginx's 499, as Prometheus answers a canceled query).
const statusClientClosed = 499

// apiError is an error with the error type it maps to; status overrides
// the type's usual status when set.
type apiError struct {
	typ    string
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badData(format string, args ...any) error {
	return &apiError{typ: errBadData, err: fmt.Errorf(format, args...)}
}

// unavailable is a 503 that asks to retry in a few seconds.
func unavailable(format string, args ...any) error {
	return &retryLater{apiError{typ: errUnavailable, err: fmt.Errorf(format, args...)}, 2 * time.Second}
}

// retryLater is an error answered with Retry-After.
type retryLater struct {
	apiError
	after time.Duration
}

func (e *retryLater) RetryAfter() time.Duration { return e.after }
func (e *retryLater) Unwrap() error             { return &e.apiError }

func notFound(format string, args ...any) error {
	return &apiError{typ: errNotFound, err: fmt.Errorf(format, args...)}
}

func methodNotAllowed(format string, args ...any) error {
	return &apiError{typ: errBadData, status: fasthttp.StatusMethodNotAllowed, err: fmt.Errorf(format, args...)}
}

// invalid marks err, which a component returned for a request it
// refused, as the client's fault (400) unless it is of a kind the
// mapper knows better (not found, unauthorized…).
func invalid(err error) error {
	if err == nil {
		return nil
	}
	if _, status := classify(err); status != fasthttp.StatusInternalServerError {
		return err
	}
	return &apiError{typ: errBadData, err: err}
}

var (
	errOverBudget    = &apiError{typ: errUnavailable, err: errors.New("tsdb is over its memory budget (--memory.budget-bytes); retry shortly")}
	errReserved      = &apiError{typ: errUnavailable, err: errors.New("tsdb is near its connection limit (--http.max-connections): the last connections serve only probes and authenticated requests; retry shortly")}
	errAdminDisabled = &apiError{typ: errUnavailable, err: errors.New("admin APIs disabled")}
	errITSMOff       = &apiError{typ: errNotFound, err: errors.New("ITSM is not configured (itsm: in --config.file)")}
	errKPIsOff       = &apiError{typ: errNotFound, err: errors.New("no KPIs are configured (kpis: in --config.file)")}
)

// classify maps an error to its error type and HTTP status. It is the
// only place that does.
func classify(err error) (string, int) {
	var ae *apiError
	var qe *query.Error
	switch {
	case errors.Is(err, storage.ErrUnavailable): // before query.Error, which may wrap it
		return errUnavailable, fasthttp.StatusServiceUnavailable
	case errors.As(err, &ae):
		if ae.status != 0 {
			return ae.typ, ae.status
		}
		return ae.typ, statusOfType(ae.typ)
	case errors.As(err, &qe):
		return string(qe.Type), statusOfType(string(qe.Type))
	case errors.Is(err, query.ErrBadSelector), errors.Is(err, tenancy.ErrInvalid),
		errors.Is(err, storage.ErrInvalidSeries), errors.Is(err, storage.ErrInvalidSample):
		return errBadData, fasthttp.StatusBadRequest
	case errors.Is(err, ruler.ErrInvalidGroup), errors.Is(err, kpi.ErrInvalid):
		return errBadData, fasthttp.StatusBadRequest
	case errors.Is(err, kpi.ErrNoForecast):
		return errExecution, fasthttp.StatusUnprocessableEntity
	case errors.Is(err, itsm.ErrConflict):
		return errBadData, fasthttp.StatusConflict
	case errors.Is(err, itsm.ErrInvalid):
		return errBadData, fasthttp.StatusBadRequest
	case errors.Is(err, itsm.ErrNotFound), errors.Is(err, kpi.ErrUnknown), errors.Is(err, ruler.ErrNoGroup):
		return errNotFound, fasthttp.StatusNotFound
	case errors.Is(err, itsm.ErrUnauthorized), errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrBadCredentials):
		return errUnauthorized, fasthttp.StatusUnauthorized
	case errors.Is(err, auth.ErrThrottled):
		return errTooMany, fasthttp.StatusTooManyRequests
	case errors.Is(err, auth.ErrForbidden), errors.Is(err, itsm.ErrForbidden):
		return errForbidden, fasthttp.StatusForbidden
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout, fasthttp.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return errCanceled, statusClientClosed
	case errors.Is(err, storage.ErrClosed), errors.Is(err, storage.ErrNotWritable):
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
		return statusClientClosed
	case errTooMany:
		return fasthttp.StatusTooManyRequests
	case errNotFound:
		return fasthttp.StatusNotFound
	case errUnauthorized:
		return fasthttp.StatusUnauthorized
	case errForbidden:
		return fasthttp.StatusForbidden
	default:
		return fasthttp.StatusInternalServerError
	}
}

// respondError answers err with its status and Prometheus's error
// envelope, or as plain text when text is set.
func respondError(ctx *fasthttp.RequestCtx, err error, text bool) {
	typ, status := classify(err)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	switch status {
	case fasthttp.StatusTooManyRequests:
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(te.RetryAfter.Seconds()))))
		} else if len(ctx.Response.Header.Peek("Retry-After")) == 0 {
			ctx.Response.Header.Set("Retry-After", "1") // queries are short: a second is plenty
		}
	case fasthttp.StatusServiceUnavailable:
		if d := storage.RetryAfter(err); d > 0 && len(ctx.Response.Header.Peek("Retry-After")) == 0 {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		}
	case fasthttp.StatusUnauthorized:
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="tsdb", charset="UTF-8"`)
	}
	if text {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(err.Error() + "\n")
		return
	}
	b := []byte(`{"status":"error","errorType":"`)
	b = append(b, typ...)
	b = append(b, `","error":`...)
	b = appendJSONString(b, err.Error())
	b = append(b, "}\n"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
