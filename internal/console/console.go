// Package console serves the control-room web console: static assets
// embedded in the binary (plain ES modules, uPlot for charts) that read
// and act through the same JSON API as every other client.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// Prefix is where the console is served.
const Prefix = "/console/"

//go:embed assets
var embedded embed.FS

// Console serves the assets.
type Console struct {
	files fs.FS
	live  bool // read from disk on every request (development)

	mu    sync.Mutex
	etags map[string]string
}

// New serves the embedded assets, or, when dir is not empty, the files in
// dir as they are on disk (for working on the console without rebuilding).
func New(dir string) (*Console, error) {
	if dir != "" {
		if _, err := os.Stat(path.Join(dir, "index.html")); err != nil {
			return nil, err
		}
		return &Console{files: os.DirFS(dir), live: true, etags: map[string]string{}}, nil
	}
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, err
	}
	return &Console{files: sub, etags: map[string]string{}}, nil
}

// IsPath reports whether path belongs to the console.
func IsPath(p string) bool { return p == "/console" || strings.HasPrefix(p, Prefix) }

// Serve answers one request under /console/. Unknown paths without a file
// extension get index.html, so that deep links work.
func (c *Console) Serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("the console is read with GET\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	p := string(ctx.Path())
	if p == "/console" {
		ctx.Redirect(Prefix, fasthttp.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(path.Clean(p), "/console")
	name = strings.TrimPrefix(name, "/")
	if name == "" || (path.Ext(name) == "" && !c.exists(name)) {
		name = "index.html"
	}
	b, err := fs.ReadFile(c.files, name)
	if err != nil {
		ctx.Error("no such console file\n", fasthttp.StatusNotFound)
		return
	}
	etag := c.etag(name, b)
	h := &ctx.Response.Header
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	if string(ctx.Request.Header.Peek("If-None-Match")) == etag {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	ctx.SetBody(b)
}

func (c *Console) exists(name string) bool {
	st, err := fs.Stat(c.files, name)
	return err == nil && !st.IsDir()
}

func (c *Console) etag(name string, b []byte) string {
	if !c.live {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e, ok := c.etags[name]; ok {
			return e
		}
	}
	sum := sha256.Sum256(b)
	e := `"` + hex.EncodeToString(sum[:8]) + `"`
	if !c.live {
		c.etags[name] = e
	}
	return e
}
