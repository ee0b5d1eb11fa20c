package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/emsdb/tsdb"

// pkg is what `go list -json` says about one package of the module.
type pkg struct {
	ImportPath   string
	Imports      []string // direct imports of the package's own files
	TestImports  []string // direct imports of its _test.go files in the package
	XTestImports []string // direct imports of its _test.go files in package x_test
	Deps         []string // every package its own files need, transitively
}

// rel is p's path inside the module ("storage/wal"), or "" for a package
// of another module.
func rel(p string) string {
	if p == module {
		return "."
	}
	if r, ok := strings.CutPrefix(p, module+"/"); ok {
		return r
	}
	return ""
}

// under reports whether the module-relative path r is dir or inside it.
func under(r, dir string) bool {
	return r == dir || strings.HasPrefix(r, dir+"/")
}

// direct is every package p or its tests import themselves.
func (p *pkg) direct() []string {
	return slices.Concat(p.Imports, p.TestImports, p.XTestImports)
}

// reach is every package p needs, transitively, plus its tests' direct
// imports.
func (p *pkg) reach() []string {
	return slices.Concat(p.Deps, p.TestImports, p.XTestImports)
}

// watchSources walks the module's folders from root so that go test's
// result cache sees every Go file: go list reads them in a child process,
// which the cache does not watch, and without this a cached PASS would
// hide a forbidden import added later. (Opening a folder makes the cache
// key depend on the names, sizes and times of its entries.)
func watchSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == root {
			return err
		}
		// The folders go list ignores too.
		if n := d.Name(); strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "node_modules" {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the module from %s: %v", root, err)
	}
}

// listPackages lists the module's packages under both settings of the
// invariants build tag, so files behind either side are seen, and merges
// the two answers.
func listPackages(t *testing.T) map[string]*pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH (go test puts it there; running the test binary directly needs it too): %v", err)
	}
	pkgs := map[string]*pkg{}
	for _, tags := range []string{"pebblegozstd", "pebblegozstd,invariants"} {
		cmd := exec.Command(goBin, "list", "-tags", tags,
			"-json=ImportPath,Imports,TestImports,XTestImports,Deps", module+"/...")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -tags %s %s/...: %v\n%s", tags, module, err, stderr.Bytes())
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p pkg
			if err := dec.Decode(&p); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("decode go list output: %v", err)
			}
			if q := pkgs[p.ImportPath]; q != nil {
				p.Imports = append(p.Imports, q.Imports...)
				p.TestImports = append(p.TestImports, q.TestImports...)
				p.XTestImports = append(p.XTestImports, q.XTestImports...)
				p.Deps = append(p.Deps, q.Deps...)
			}
			pkgs[p.ImportPath] = &p
		}
	}
	// NB: a listing that misses the bottom layer means the test looked in
	// the wrong place, and every rule below would pass vacuously.
	if pkgs[module+"/storage"] == nil || len(pkgs) < 20 {
		t.Fatalf("go list found %d packages and no %s/storage: run the test from inside the module", len(pkgs), module)
	}
	return pkgs
}

// how says whether p imports d itself or only depends on it through
// another package, for messages.
func (p *pkg) how(d string) string {
	if slices.Contains(p.direct(), d) {
		return " imports "
	}
	return " depends (through another package) on "
}

// violations collects one message per (package, import) pair, sorted and
// deduplicated, so a rule reports everything at once.
type violations map[string]bool

func (v violations) add(msg string) { v[msg] = true }

func (v violations) report(t *testing.T, fix string) {
	t.Helper()
	if len(v) == 0 {
		return
	}
	msgs := make([]string, 0, len(v))
	for m := range v {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	t.Errorf("%s\nfix: %s", strings.Join(msgs, "\n"), fix)
}

// pebbleUsers are the packages outside storage/... allowed to import
// Pebble, each with the reason.
var pebbleUsers = map[string]string{
	// A diagnostic tool that opens storage's shard folders read-only to
	// count bytes per key prefix; it never runs inside tsdb.
	"benchmarks/cmd/pebblestat": "reads the raw shard folders",
	// Its sibling splits the sealed chunks' bytes by part and value mode.
	"benchmarks/cmd/chunkstat": "reads the raw shard folders",
}

// fasthttpOffenders are packages outside web/, ingest/... and
// internal/... allowed to import fasthttp: none since HTTP moved to web/
// (#20). Never add one: HTTP code belongs in web/.
var fasthttpOffenders = []string{}

func TestLint(t *testing.T) {
	watchSources(t, filepath.Join("..", ".."))
	pkgs := listPackages(t)
	paths := make([]string, 0, len(pkgs))
	for p := range pkgs {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	// storage is the bottom layer: it may use storage/... of this module
	// and nothing else of it.
	t.Run("storage-imports-nothing-above", func(t *testing.T) {
		v := violations{}
		for _, path := range paths {
			r := rel(path)
			if !under(r, "storage") {
				continue
			}
			for _, d := range pkgs[path].reach() {
				if dr := rel(d); dr != "" && !under(dr, "storage") {
					v.add(r + pkgs[path].how(d) + dr)
				}
			}
		}
		v.report(t, "storage is the bottom layer and may import only storage/... of this module. "+
			"Move the code storage needs down into storage/ (storage/internal/ if only storage uses it), "+
			"or declare an interface or an Options field in storage that the layer above fills in.")
	})

	// ingest decodes and writes through storage.Writer; it never needs the
	// engine or the alerting layer.
	t.Run("ingest-imports-no-query-or-alerting", func(t *testing.T) {
		v := violations{}
		for _, path := range paths {
			r := rel(path)
			if !under(r, "ingest") {
				continue
			}
			for _, d := range pkgs[path].reach() {
				if dr := rel(d); under(dr, "query") || under(dr, "alerting") {
					v.add(r + pkgs[path].how(d) + dr)
				}
			}
		}
		v.report(t, "ingest/... sits beside query/, on storage: it must not depend on query/... or alerting/..., "+
			"even indirectly. Move what both need down into storage/ or into a small package under internal/.")
	})

	// Pebble is storage's implementation detail: everyone else goes through
	// storage.Reader and storage.Writer.
	t.Run("pebble-only-in-storage", func(t *testing.T) {
		v := violations{}
		for _, path := range paths {
			r := rel(path)
			if under(r, "storage") || pebbleUsers[r] != "" {
				continue
			}
			for _, d := range pkgs[path].direct() {
				if d == "github.com/cockroachdb/pebble" || strings.HasPrefix(d, "github.com/cockroachdb/pebble/") {
					v.add(r + " imports " + d)
				}
			}
		}
		v.report(t, "only storage/... may import Pebble. Read and write through storage.Reader and storage.Writer; "+
			"if they lack something, add it to storage (a method, an optional interface or an Options field).")
	})

	// HTTP lives in web/, in ingest's listeners and in internal/ helpers;
	// the domain packages (query, alerting) stay free of it.
	t.Run("fasthttp-only-in-web-ingest-internal", func(t *testing.T) {
		v := violations{}
		still := map[string]bool{}
		for _, path := range paths {
			r := rel(path)
			if under(r, "web") || under(r, "ingest") || under(r, "internal") {
				continue
			}
			for _, d := range pkgs[path].direct() {
				if d != "github.com/valyala/fasthttp" && !strings.HasPrefix(d, "github.com/valyala/fasthttp/") {
					continue
				}
				if slices.Contains(fasthttpOffenders, r) {
					still[r] = true
					continue
				}
				v.add(r + " imports " + d)
			}
		}
		v.report(t, "HTTP handlers belong in web/ (or in an ingest/... listener); keep query/ and alerting/ "+
			"free of fasthttp and expose plain Go functions that web/ calls. Do not add to fasthttpOffenders.")
		for _, r := range fasthttpOffenders {
			if !still[r] {
				t.Errorf("%s no longer imports fasthttp (or is gone): remove it from fasthttpOffenders in internal/lint/lint_test.go", r)
			}
		}
	})
}
