package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func httpClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// RemoteWrite sends a remote-write 1.0 request and returns the HTTP status.
func RemoteWrite(ctx context.Context, c *http.Client, url string, req *prompb.WriteRequest, headers ...string) (int, string, error) {
	raw, err := req.Marshal()
	if err != nil {
		return 0, "", err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", err
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for i := 0; i+1 < len(headers); i += 2 {
		hr.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(hr)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// ExportedSeries is one line of /api/v1/export. Its native histograms are
// kept as the JSON objects export wrote, to compare byte for byte.
type ExportedSeries struct {
	Metric              map[string]string `json:"metric"`
	Values              []any             `json:"values"`
	Timestamps          []int64           `json:"timestamps"`
	Histograms          []json.RawMessage `json:"histograms,omitempty"`
	HistogramTimestamps []int64           `json:"histogram_timestamps,omitempty"`
}

// Value returns the i-th value as a float64, decoding the special strings.
func (s ExportedSeries) Value(i int) float64 {
	switch v := s.Values[i].(type) {
	case float64:
		return v
	case string:
		switch v {
		case "+Inf":
			return math.Inf(1)
		case "-Inf":
			return math.Inf(-1)
		case "StaleNaN":
			return math.Float64frombits(0x7ff0000000000002)
		}
	}
	return math.NaN()
}

// Export reads every series matching match from base's /api/v1/export.
func Export(c *http.Client, base, match string, headers ...string) ([]ExportedSeries, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/export?match[]="+url.QueryEscape(match), nil)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %d: %s", resp.StatusCode, b)
	}
	var out []ExportedSeries
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var s ExportedSeries
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("decode export line %d: %w", len(out), err)
		}
		out = append(out, s)
	}
	return out, nil
}

// APIResult is an answer of the Prometheus HTTP API (query, query_range),
// as the differential tests compare them.
type APIResult struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Infos     []string `json:"infos"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// PostAPI posts params as a form to base+path and decodes the answer.
func PostAPI(c *http.Client, base, path string, params url.Values) (APIResult, error) {
	var r APIResult
	resp, err := c.PostForm(base+path, params)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r, err
}
