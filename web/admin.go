package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Admin is what the admin endpoints need from storage.
type Admin interface {
	DeleteSeries(ctx context.Context, tenant string, mint, maxt int64, ms ...*labels.Matcher) (int, error)
	Snapshot(dir string) error
	Snapshots(dir string) ([]storage.SnapshotInfo, error)
}

// admin serves /api/v1/admin/tsdb/*; every handler refuses while the
// admin API is off (--web.enable-admin-api), as Prometheus does.
type admin struct {
	store       Admin // nil: off
	snapshotDir string
	cache       *query.ResultCache // reset after deletes; may be nil
	now         func() time.Time
	log         *slog.Logger
}

// deleteSeries serves POST /api/v1/admin/tsdb/delete_series with
// Prometheus' parameters: match[] (required), start and end (default: all
// time). It answers 204.
func (a *admin) deleteSeries(r *Request) (any, error) {
	if a.store == nil {
		return nil, errAdminDisabled
	}
	p, err := readListParams(r, true)
	if err != nil {
		return nil, err
	}
	tenant, start, end := p.tenant, p.start, p.end
	if a.cache != nil {
		defer a.cache.Reset() // cached results may hold deleted samples
	}
	total := 0
	for _, set := range p.sets {
		n, err := a.store.DeleteSeries(context.Background(), tenant, start, end, set...)
		total += n
		if err != nil {
			return nil, err
		}
	}
	a.log.Info("deleted series", "tenant", tenant, "series", total, "start", start, "end", end)
	return noContent{}, nil
}

// snapshot serves POST /api/v1/admin/tsdb/snapshot: a consistent copy of
// the whole data folder under the snapshot folder, named as Prometheus
// names them.
func (a *admin) snapshot(*Request) (any, error) {
	if a.store == nil {
		return nil, errAdminDisabled
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := a.now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:])
	if err := a.store.Snapshot(filepath.Join(a.snapshotDir, name)); err != nil {
		return nil, err
	}
	return map[string]string{"name": name}, nil
}

var snapshotName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$`)

// Snapshot is one snapshot, as GET /api/v1/admin/tsdb/snapshots lists
// them.
type Snapshot struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // bytes of its files
}

// snapshots serves GET /api/v1/admin/tsdb/snapshots: every snapshot the
// admin API took and nobody deleted, oldest first, so that one a killed
// backup left behind can be found and deleted.
func (a *admin) snapshots(*Request) (any, error) {
	if a.store == nil {
		return nil, errAdminDisabled
	}
	all, err := a.store.Snapshots(a.snapshotDir)
	if err != nil {
		return nil, err
	}
	out := []Snapshot{}
	for _, si := range all {
		if snapshotName.MatchString(si.Name) {
			out = append(out, Snapshot{Name: si.Name, Created: si.Created.UTC(), Size: si.Size})
		}
	}
	return out, nil
}

// SnapshotFile is one file of a snapshot, as GET
// /api/v1/admin/tsdb/snapshots/{name} lists them.
type SnapshotFile struct {
	Path string `json:"path"` // relative, with forward slashes
	Size int64  `json:"size"`
}

// snapshotDirOf returns the folder of the snapshot the request names.
func (a *admin) snapshotDirOf(r *Request) (string, string, error) {
	if a.store == nil {
		return "", "", errAdminDisabled
	}
	name := r.Param("name")
	if !snapshotName.MatchString(name) {
		return "", "", notFound("no snapshot %q", name)
	}
	dir := filepath.Join(a.snapshotDir, name)
	if _, err := os.Stat(dir); err != nil {
		return "", "", notFound("no snapshot %q", name)
	}
	return name, dir, nil
}

// snapshotFiles serves GET /api/v1/admin/tsdb/snapshots/{name}: its files,
// for copying it off the machine (tsdb backup).
func (a *admin) snapshotFiles(r *Request) (any, error) {
	name, dir, err := a.snapshotDirOf(r)
	if err != nil {
		return nil, err
	}
	files := []SnapshotFile{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
		return nil, err
	}
	return map[string]any{"name": name, "files": files}, nil
}

// snapshotFile serves GET /api/v1/admin/tsdb/snapshots/{name}/{path}: one
// file of the snapshot.
func (a *admin) snapshotFile(r *Request) (any, error) {
	name, dir, err := a.snapshotDirOf(r)
	if err != nil {
		return nil, err
	}
	file := r.Param("path")
	if file == "" {
		return a.snapshotFiles(r)
	}
	clean := filepath.Clean(filepath.FromSlash(file))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, badData("bad file path %q", file)
	}
	f, err := os.Open(filepath.Join(dir, clean))
	if err != nil {
		return nil, notFound("no file %q in snapshot %s", file, name)
	}
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		f.Close()
		return nil, notFound("no file %q in snapshot %s", file, name)
	}
	return stream{contentType: "application/octet-stream", r: f, size: int(info.Size())}, nil // closed by fasthttp
}

// deleteSnapshot serves DELETE /api/v1/admin/tsdb/snapshots/{name}.
func (a *admin) deleteSnapshot(r *Request) (any, error) {
	_, dir, err := a.snapshotDirOf(r)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return noContent{}, nil
}
