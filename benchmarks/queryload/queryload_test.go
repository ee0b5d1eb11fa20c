package queryload

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The servers take turns request by request, each run starting with the
// next one; a server that fails is left out from then on, its error
// naming the query; a gzip answer is counted by its series, inflated.
func TestRunInterleavedTakesTurns(t *testing.T) {
	var mu sync.Mutex
	var order []string
	answer := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{"a":"b"},"value":[1,"2"]}]}}`
	server := func(name string, gz bool, failOn string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			if failOn != "" && strings.Contains(r.URL.Query().Get("query"), failOn) {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			if gz {
				if r.Header.Get("Accept-Encoding") != "gzip" {
					t.Errorf("%s: Accept-Encoding %q, want gzip", name, r.Header.Get("Accept-Encoding"))
				}
				w.Header().Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				_, _ = zw.Write([]byte(answer))
				_ = zw.Close()
				return
			}
			_, _ = w.Write([]byte(answer))
		}))
	}
	a, b, c := server("a", false, ""), server("b", true, ""), server("c", false, "second")
	defer a.Close()
	defer b.Close()
	defer c.Close()
	qs := []Query{{Name: "first", Expr: "first"}, {Name: "second", Expr: "second"}, {Name: "third", Expr: "third", Range: time.Hour, Step: time.Minute}}
	stats, errs := RunInterleaved(context.Background(), []string{a.URL, b.URL, c.URL}, time.Unix(3600*24, 0), qs, 3)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors: %v", errs)
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "second") {
		t.Fatalf("server c: error %v, want one naming the query second", errs[2])
	}
	want := "abc" + "bca" + "cab" + // first: c answers
		"abc" + "ba" + "ab" + // second: c fails on its first run and is left out
		"ab" + "ba" + "ab" // third
	if got := strings.Join(order, ""); got != want {
		t.Fatalf("request order %s, want %s", got, want)
	}
	for j, n := range []int{3, 3, 1} {
		if len(stats[j]) != n {
			t.Fatalf("server %d: %d stats, want %d", j, len(stats[j]), n)
		}
		for _, st := range stats[j] {
			if st.Series != 2 || st.Runs != 3 || st.P50Ms <= 0 {
				t.Errorf("server %d: %+v, want 2 series over 3 runs", j, st)
			}
		}
	}
	if !stats[0][2].Range || stats[0][2].Name != "third" {
		t.Errorf("third query's stat: %+v", stats[0][2])
	}
}
