package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// backupFlags are the flags of tsdb backup.
type backupFlags struct {
	url, to, token, user, password string
}

// manifest records what a backup folder holds.
type manifest struct {
	Snapshot string         `json:"snapshot"`
	Server   string         `json:"server"`
	Taken    time.Time      `json:"taken"`
	Files    []snapshotFile `json:"files"`
}

type snapshotFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

const manifestName = "tsdb-backup.json"

// backup copies a consistent snapshot of a running server into a folder:
// the server snapshots itself (a Pebble checkpoint per shard and its WAL,
// taken at one moment), the files are downloaded, and the snapshot is
// deleted on the server, also when the backup fails or is interrupted
// (SIGINT, SIGTERM; a second signal ends it at once). Pebble's table files
// never change once written, so a file already in the folder with the same
// name and size is kept: backing up into the same folder again copies only
// what is new.
func backup(args []string, out io.Writer) (err error) {
	var f backupFlags
	fset := flag.NewFlagSet("backup", flag.ContinueOnError)
	fset.StringVar(&f.url, "url", "http://127.0.0.1:9090", "the running tsdb (started with --web.enable-admin-api)")
	fset.StringVar(&f.to, "to", "", "backup folder (created; reused for incremental backups)")
	fset.StringVar(&f.token, "token", "", "bearer token of an admin (or TSDB_TOKEN)")
	fset.StringVar(&f.user, "user", "", "basic-auth user of an admin")
	fset.StringVar(&f.password, "password", "", "basic-auth password (or TSDB_PASSWORD)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if f.to == "" {
		return errors.New("--to is required")
	}
	if f.token == "" {
		f.token = os.Getenv("TSDB_TOKEN")
	}
	if f.password == "" {
		f.password = os.Getenv("TSDB_PASSWORD")
	}
	base := strings.TrimSuffix(f.url, "/")
	c := &http.Client{Timeout: 10 * time.Minute}
	// A signal cancels the copy; the snapshot is then deleted below.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	call := func(ctx context.Context, method, path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			return nil, err
		}
		switch {
		case f.token != "":
			req.Header.Set("Authorization", "Bearer "+f.token)
		case f.user != "":
			req.SetBasicAuth(f.user, f.password)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		}
		return resp, nil
	}
	var snap struct {
		Data struct{ Name string } `json:"data"`
	}
	resp, err := call(ctx, http.MethodPost, "/api/v1/admin/tsdb/snapshot")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil || snap.Data.Name == "" {
		return fmt.Errorf("snapshot: unexpected answer: %v", err)
	}
	name := snap.Data.Name
	defer func() {
		interrupted := err != nil && ctx.Err() != nil
		stop() // from here a second signal ends the process at once
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, derr := call(dctx, http.MethodDelete, "/api/v1/admin/tsdb/snapshots/"+name)
		if derr == nil {
			r.Body.Close()
		}
		switch {
		case derr != nil:
			derr = fmt.Errorf("snapshot %s is left on the server (%w): delete it with DELETE /api/v1/admin/tsdb/snapshots/%s, "+
				"or the server removes it at its next start once older than --snapshots.max-age", name, derr, name)
			err = errors.Join(err, derr)
		case interrupted:
			err = fmt.Errorf("interrupted; snapshot %s deleted on the server", name)
		}
	}()
	var list struct {
		Data manifest `json:"data"`
	}
	resp, err = call(ctx, http.MethodGet, "/api/v1/admin/tsdb/snapshots/"+name)
	if err != nil {
		return err
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("snapshot listing: %w", err)
	}
	if err := os.MkdirAll(f.to, 0o755); err != nil {
		return err
	}
	var total, copied, reused int64
	for _, sf := range list.Data.Files {
		total += sf.Size
	}
	pb := newBar(out, "backup", total)
	keep := map[string]bool{manifestName: true}
	for _, sf := range list.Data.Files {
		keep[filepath.FromSlash(sf.Path)] = true
		dst := filepath.Join(f.to, filepath.FromSlash(sf.Path))
		if !strings.HasPrefix(dst, filepath.Clean(f.to)+string(filepath.Separator)) {
			return fmt.Errorf("snapshot names a file outside the folder: %q", sf.Path)
		}
		if immutable(sf.Path) {
			if info, err := os.Stat(dst); err == nil && info.Size() == sf.Size {
				reused += sf.Size
				pb.set(copied + reused)
				continue
			}
		}
		resp, err := call(ctx, http.MethodGet, "/api/v1/admin/tsdb/snapshots/"+name+"/"+(&url.URL{Path: sf.Path}).EscapedPath())
		if err != nil {
			return err
		}
		n, err := writeFile(dst, resp.Body, func(n int64) { pb.set(copied + reused + n) })
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("copy %s: %w", sf.Path, err)
		}
		if n != sf.Size {
			return fmt.Errorf("copy %s: got %d bytes, want %d", sf.Path, n, sf.Size)
		}
		copied += n
	}
	// The folder mirrors this snapshot: drop what it no longer has.
	_ = filepath.WalkDir(f.to, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(f.to, p)
		if !keep[rel] {
			_ = os.Remove(p)
		}
		return nil
	})
	m := manifest{Snapshot: name, Server: base, Taken: time.Now().UTC(), Files: list.Data.Files}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(f.to, manifestName), b, 0o644); err != nil {
		return err
	}
	pb.set(total)
	fmt.Fprintf(out, "\nbackup %s: %d files, %s copied, %s unchanged since the last backup\n", name, len(list.Data.Files), human(copied), human(reused))
	return nil
}

// immutable reports whether a snapshot file never changes once written
// (Pebble's tables and blobs), so that a copy of the same size is it.
func immutable(p string) bool {
	return strings.HasSuffix(p, ".sst") || strings.HasSuffix(p, ".blob")
}

// restore copies a backup folder into an empty data folder.
func restore(args []string, out io.Writer) error {
	fset := flag.NewFlagSet("restore", flag.ContinueOnError)
	from := fset.String("from", "", "backup folder (made by tsdb backup)")
	data := fset.String("data", "", "data folder to create (must be empty or absent)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *from == "" || *data == "" {
		return errors.New("--from and --data are required")
	}
	raw, err := os.ReadFile(filepath.Join(*from, manifestName))
	if err != nil {
		return fmt.Errorf("%s is not a tsdb backup: %w", *from, err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %w", manifestName, err)
	}
	if entries, err := os.ReadDir(*data); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: restore only into a new data folder", *data)
	}
	var total, done int64
	for _, sf := range m.Files {
		total += sf.Size
	}
	pb := newBar(out, "restore", total)
	for _, sf := range m.Files {
		src, err := os.Open(filepath.Join(*from, filepath.FromSlash(sf.Path)))
		if err != nil {
			return fmt.Errorf("backup incomplete: %w", err)
		}
		n, err := writeFile(filepath.Join(*data, filepath.FromSlash(sf.Path)), src, func(n int64) { pb.set(done + n) })
		src.Close()
		if err != nil {
			return err
		}
		if n != sf.Size {
			return fmt.Errorf("backup file %s has %d bytes, the manifest says %d", sf.Path, n, sf.Size)
		}
		done += n
	}
	pb.set(total)
	fmt.Fprintf(out, "\nrestored snapshot %s (%d files, %s) into %s\n", m.Snapshot, len(m.Files), human(total), *data)
	return nil
}

// writeFile copies r into path (fsynced), reporting progress.
func writeFile(path string, r io.Reader, progress func(int64)) (n int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	buf := make([]byte, 1<<20)
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if _, err := f.Write(buf[:k]); err != nil {
				f.Close()
				return n, err
			}
			n += int64(k)
			progress(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return n, rerr
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, err
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp, path)
}

// progressBar draws a progress bar on one line, at most ten times a second,
// and once more when it reaches its total.
type progressBar struct {
	w         io.Writer
	what      string
	total     int64
	t0, drawn time.Time
	shown     int64 // the figure last drawn
}

func newBar(w io.Writer, what string, total int64) *progressBar {
	return &progressBar{w: w, what: what, total: total, t0: time.Now()}
}

func (p *progressBar) set(n int64) {
	w, what, total, t0 := p.w, p.what, p.total, p.t0
	n = min(n, total)
	complete := n == total && (p.shown < total || p.drawn.IsZero())
	if !complete && (n == p.shown || time.Since(p.drawn) < 100*time.Millisecond) {
		return
	}
	p.drawn, p.shown = time.Now(), n
	frac := 1.0
	if total > 0 {
		frac = float64(n) / float64(total)
	}
	const width = 30
	k := int(frac * width)
	rate := float64(n) / max(time.Since(t0).Seconds(), 1e-3)
	fmt.Fprintf(w, "\r%s [%s%s] %5.1f%% %s/%s %s/s", what, strings.Repeat("=", k), strings.Repeat(" ", width-k), 100*frac, human(n), human(total), human(int64(rate)))
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
