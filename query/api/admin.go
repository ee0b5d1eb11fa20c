package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

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

var snapshotName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$`)

// SnapshotFile is one file of a snapshot, as GET
// /api/v1/admin/tsdb/snapshots/{name} lists them.
type SnapshotFile struct {
	Path string `json:"path"` // relative, with forward slashes
	Size int64  `json:"size"`
}

// Snapshots serves the snapshots for copying them off the machine
// (tsdb backup): GET …/snapshots/{name} lists its files, GET
// …/snapshots/{name}/{path} sends one, DELETE …/snapshots/{name} removes
// the snapshot. rest is the path after /api/v1/admin/tsdb/snapshots/.
func (a *API) Snapshots(ctx *fasthttp.RequestCtx, rest string) {
	if !a.opts.EnableAdmin || a.admin == nil {
		writeError(ctx, errAdminDisabled)
		return
	}
	name, file, _ := strings.Cut(rest, "/")
	if !snapshotName.MatchString(name) {
		writeError(ctx, badData("no snapshot %q", name))
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	dir := filepath.Join(a.opts.SnapshotDir, name)
	if _, err := os.Stat(dir); err != nil {
		writeError(ctx, badData("no snapshot %q", name))
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	switch {
	case ctx.IsDelete() && file == "":
		if err := os.RemoveAll(dir); err != nil {
			writeError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case ctx.IsGet() && file == "":
		var files []SnapshotFile
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files = append(files, SnapshotFile{Path: filepath.ToSlash(rel), Size: info.Size()})
			return nil
		})
		if err != nil {
			writeError(ctx, err)
			return
		}
		b, _ := json.Marshal(map[string]any{"name": name, "files": files})
		writeData(ctx, b)
	case ctx.IsGet():
		clean := filepath.Clean(filepath.FromSlash(file))
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			writeError(ctx, badData("bad file path %q", file))
			return
		}
		f, err := os.Open(filepath.Join(dir, clean))
		if err != nil {
			writeError(ctx, badData("no file %q in snapshot %s", file, name))
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		info, err := f.Stat()
		if err != nil || info.IsDir() {
			f.Close()
			writeError(ctx, badData("no file %q in snapshot %s", file, name))
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		ctx.SetContentType("application/octet-stream")
		ctx.SetBodyStream(f, int(info.Size())) // closed by fasthttp
	default:
		ctx.Response.Header.Set("Allow", "GET, DELETE")
		writeError(ctx, badData("use GET (list or file) or DELETE (the snapshot)"))
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	}
}
