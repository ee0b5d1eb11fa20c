package web

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestReadySaysWhy: /-/ready answers 503 with the reason while storage
// refuses writes (a full disk) or tsdb shuts down, a write the API refuses
// for a full disk is a 503, and both recover with the disk.
func TestReadySaysWhy(t *testing.T) {
	fs := st.NewFullMemFS()
	db := st.OpenDir(t, "/data", &storage.Options{FS: fs, WriteRetryMax: 20 * time.Millisecond})
	eng := query.NewEngine(db, nil)
	r := ruler.New(eng, db, nil, nil)
	t.Cleanup(r.Stop)
	shuttingDown := false
	a := New(Deps{Reader: db, Engine: eng, Ruler: r, RuleStore: db, Ready: func() error {
		if shuttingDown {
			return errors.New("shutting down")
		}
		return db.Writable()
	}})
	group := "name: g\nrules:\n  - record: r\n    expr: vector(1)\n"

	code, body := do(a, "GET", "/-/ready", "", "")
	require.Equal(t, 200, code)
	require.Equal(t, "Ready.\n", body)

	fs.SetFree(0)
	code, body = do(a, "POST", "/config/v1/rules/ns", "acme", group)
	require.Equal(t, 503, code, body)
	require.Contains(t, body, "no space left on device")
	code, body = do(a, "GET", "/-/ready", "", "")
	require.Equal(t, 503, code)
	require.Equal(t, "Not ready: storage: no space left on device: free space in /data\n", body)

	fs.SetFree(-1)
	require.Eventually(t, func() bool { code, _ := do(a, "GET", "/-/ready", "", ""); return code == 200 }, 10*time.Second, 5*time.Millisecond)
	code, body = do(a, "POST", "/config/v1/rules/ns", "acme", group)
	require.Equal(t, 202, code, body)

	shuttingDown = true
	code, body = do(a, "GET", "/-/ready", "", "")
	require.Equal(t, 503, code)
	require.Equal(t, "Not ready: shutting down\n", body)
}
