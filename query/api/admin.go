package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/tenancy"
)

var errAdminDisabled = &apiError{typ: errUnavailable, err: errors.New("admin APIs disabled")}

// DeleteSeries serves POST /api/v1/admin/tsdb/delete_series with
// Prometheus' parameters: match[] (required), start and end (default: all
// time). It answers 204.
func (a *API) DeleteSeries(ctx *fasthttp.RequestCtx) {
	if !a.opts.EnableAdmin || a.admin == nil {
		writeError(ctx, errAdminDisabled)
		return
	}
	if !ctx.IsPost() && !ctx.IsPut() {
		ctx.Response.Header.Set("Allow", "POST, PUT")
		writeError(ctx, &apiError{typ: errBadData, err: errors.New("delete_series needs POST or PUT")})
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	sets, err := matchers(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	start, end, err := timeRange(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	total := 0
	if a.opts.Cache != nil {
		defer a.opts.Cache.Reset() // cached results may hold deleted samples
	}
	for _, set := range sets {
		n, err := a.admin.DeleteSeries(ctx, tenant, start, end, set...)
		total += n
		if err != nil {
			writeError(ctx, err)
			return
		}
	}
	a.opts.Logger.Info("deleted series", "tenant", tenant, "series", total, "start", start, "end", end)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// Snapshot serves POST /api/v1/admin/tsdb/snapshot: a consistent copy of
// the whole data folder under SnapshotDir, named as Prometheus names them.
func (a *API) Snapshot(ctx *fasthttp.RequestCtx) {
	if !a.opts.EnableAdmin || a.admin == nil {
		writeError(ctx, errAdminDisabled)
		return
	}
	if !ctx.IsPost() && !ctx.IsPut() {
		ctx.Response.Header.Set("Allow", "POST, PUT")
		writeError(ctx, &apiError{typ: errBadData, err: errors.New("snapshot needs POST or PUT")})
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := a.opts.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:])
	if err := a.admin.Snapshot(filepath.Join(a.opts.SnapshotDir, name)); err != nil {
		writeError(ctx, err)
		return
	}
	b := appendJSONString([]byte(`{"name":`), name)
	writeData(ctx, append(b, '}'))
}
