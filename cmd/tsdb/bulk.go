package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// client is what tsdb export and tsdb import share: a server URL, a
// tenant and credentials.
type client struct {
	base, tenant, token, user, password string
	http                                *http.Client
}

func (c *client) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.base, "url", "http://127.0.0.1:9090", "the tsdb server")
	fs.StringVar(&c.tenant, "tenant", "", "X-Scope-OrgID (default: the server's default for the credentials)")
	fs.StringVar(&c.token, "token", "", "bearer token (or TSDB_TOKEN)")
	fs.StringVar(&c.user, "user", "", "basic-auth user")
	fs.StringVar(&c.password, "password", "", "basic-auth password (or TSDB_PASSWORD)")
}

func (c *client) do(method, path string, body io.Reader, ctype string) (*http.Response, error) {
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Minute}
		c.base = strings.TrimSuffix(c.base, "/")
		if c.token == "" {
			c.token = os.Getenv("TSDB_TOKEN")
		}
		if c.password == "" {
			c.password = os.Getenv("TSDB_PASSWORD")
		}
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
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

// exportLine is one line of /api/v1/export. Histograms are kept as they
// came: Prometheus text has no form for them.
type exportLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []any             `json:"values"`
	Timestamps []int64           `json:"timestamps"`
	Histograms []json.RawMessage `json:"histograms"`
}

// bulkExport writes the series matching --match to a file as JSON lines
// (what /api/v1/export gives) or Prometheus text with timestamps.
func bulkExport(args []string, out io.Writer) error {
	var c client
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	c.flags(fs)
	match := fs.String("match", `{__name__!=""}`, "series selector")
	start := fs.String("start", "", "start (RFC 3339 or Unix seconds; default: all)")
	end := fs.String("end", "", "end (default: now)")
	format := fs.String("format", "jsonl", "jsonl or prom (Prometheus text with timestamps)")
	file := fs.String("out", "", "output file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "prom" {
		return fmt.Errorf("--format %q: jsonl or prom", *format)
	}
	q := url.Values{"match[]": {*match}}
	if *start != "" {
		q.Set("start", *start)
	}
	if *end != "" {
		q.Set("end", *end)
	}
	resp, err := c.do(http.MethodGet, "/api/v1/export?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := io.Writer(os.Stdout)
	if *file != "" {
		f, err := os.Create(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var series, samples, skipped int64
	t0 := time.Now()
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		series++
		if *format == "jsonl" {
			bw.Write(line)
			bw.WriteByte('\n')
			samples += int64(bytes.Count(line, []byte(","))) // rough, for the progress line
		} else {
			var l exportLine
			if err := json.Unmarshal(line, &l); err != nil {
				return fmt.Errorf("export line %d: %w", series, err)
			}
			samples += int64(writeText(bw, &l))
			skipped += int64(len(l.Histograms))
		}
		if series%1000 == 0 {
			fmt.Fprintf(out, "\rexport: %d series, %.0f series/s", series, float64(series)/time.Since(t0).Seconds())
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\rexport: %d series in %s\n", series, time.Since(t0).Round(time.Millisecond))
	if skipped > 0 {
		fmt.Fprintf(out, "export: skipped %d native histogram samples: Prometheus text has no form for them (use --format jsonl)\n", skipped)
	}
	return nil
}

// writeText writes one exported series as Prometheus text lines with
// millisecond timestamps; stale markers have no text form and are left
// out. It returns the lines written.
func writeText(w *bufio.Writer, l *exportLine) int {
	name := l.Metric["__name__"]
	keys := make([]string, 0, len(l.Metric))
	for k := range l.Metric {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var head strings.Builder
	head.WriteString(name)
	if len(keys) > 0 {
		head.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				head.WriteByte(',')
			}
			head.WriteString(k + "=" + strconv.Quote(l.Metric[k]))
		}
		head.WriteByte('}')
	}
	h := head.String()
	n := 0
	for i, v := range l.Values {
		var s string
		switch x := v.(type) {
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		case string:
			if x == "StaleNaN" {
				continue
			}
			s = x // NaN, +Inf, -Inf
		default:
			continue
		}
		fmt.Fprintf(w, "%s %s %d\n", h, s, l.Timestamps[i])
		n++
	}
	return n
}

// bulkImport sends a file to the server in chunks of whole lines:
// Prometheus text (or OpenMetrics) to /api/v1/import/prometheus, JSON
// lines from tsdb export (or VictoriaMetrics' export), native histograms
// included, to /api/v1/import.
func bulkImport(args []string, out io.Writer) error {
	var c client
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	c.flags(fs)
	file := fs.String("file", "", "input file")
	format := fs.String("format", "", "prom or jsonl (default: from the file name, .jsonl/.json → jsonl)")
	chunk := fs.Int("chunk-bytes", 4<<20, "bytes per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	if *format == "" {
		*format = "prom"
		if strings.HasSuffix(*file, ".jsonl") || strings.HasSuffix(*file, ".json") {
			*format = "jsonl"
		}
	}
	if *format != "jsonl" && *format != "prom" {
		return fmt.Errorf("--format %q: jsonl or prom", *format)
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	pb := newBar(out, "import", info.Size())
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var buf bytes.Buffer
	// Progress is what the scanner has handed out, not what it has read
	// ahead: a small file is read whole at once.
	var sent, lines, consumed int64
	path, ctype := "/api/v1/import/prometheus", "text/plain"
	if *format == "jsonl" {
		path, ctype = "/api/v1/import", "application/stream+json"
	}
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		resp, err := c.do(http.MethodPost, path, bytes.NewReader(buf.Bytes()), ctype)
		if err != nil {
			return fmt.Errorf("after %d lines: %w", lines, err)
		}
		resp.Body.Close()
		sent += int64(buf.Len())
		buf.Reset()
		return nil
	}
	bw := bufio.NewWriter(&buf)
	for sc.Scan() {
		line := sc.Bytes()
		consumed += int64(len(line)) + 1
		if *format == "jsonl" && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		bw.Write(line)
		bw.WriteByte('\n')
		lines++
		if err := bw.Flush(); err != nil {
			return err
		}
		if buf.Len() >= *chunk {
			if err := flush(); err != nil {
				return err
			}
		}
		pb.set(consumed)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	pb.set(info.Size())
	fmt.Fprintf(out, "\nimported %d lines (%s) from %s\n", lines, human(sent), *file)
	return nil
}
