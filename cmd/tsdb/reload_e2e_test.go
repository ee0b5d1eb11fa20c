package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/auth"
)

// TestConfigReload: users and limits change without a restart (POST
// /-/reload and SIGHUP); a broken file or one that would turn
// authentication off changes nothing; sections that need a restart are
// named.
func TestConfigReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tsdb.yml")
	write := func(users, lim string) {
		require.NoError(t, os.WriteFile(cfg, []byte("auth:\n  users:\n"+users+"limits:\n  tenants:\n"+lim), 0o644))
	}
	admin := fmt.Sprintf("    - {name: admin, token_sha256: %s, roles: [admin], tenants: [\"*\"]}\n", auth.HashToken("root"))
	oldReader := fmt.Sprintf("    - {name: old, token_sha256: %s, roles: [read, write], tenants: [default]}\n", auth.HashToken("old-token"))
	newReader := fmt.Sprintf("    - {name: new, token_sha256: %s, roles: [read, write], tenants: [default]}\n", auth.HashToken("new-token"))
	write(admin+oldReader, "    default: {max_labels_per_series: 3}\n")
	db := apptest.StartTSDB(t, apptest.Build(t), filepath.Join(dir, "data"), "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(token, method, path string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, db.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wide := `wide{a="1",b="2",c="3"} 1` + "\n" // four labels with the name
	code, body := do("old-token", "POST", "/api/v1/import/prometheus", wide)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "max_labels_per_series")

	// The status endpoints Prometheus tools read: the config as loaded
	// with its secrets hidden (admins only), the flags, the runtime.
	code, body = do("root", "GET", "/api/v1/status/config", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `token_sha256: \u003csecret\u003e`)
	require.NotContains(t, body, auth.HashToken("root"), "no secret in the status API")
	require.Contains(t, body, "max_labels_per_series: 3")
	code, body = do("old-token", "GET", "/api/v1/status/config", "")
	require.Equal(t, 403, code, body)
	code, body = do("old-token", "GET", "/api/v1/status/flags", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"config.file":"`+cfg+`"`)
	code, body = do("old-token", "GET", "/api/v1/status/runtimeinfo", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"reloadConfigSuccess":true`)
	require.Contains(t, body, `"storageRetention":"unlimited"`)

	// New user, old one gone, limit raised.
	write(admin+newReader, "    default: {max_labels_per_series: 8}\n")
	code, body = do("root", "POST", "/-/reload", "")
	require.Equal(t, 200, code, body)
	code, body = do("old-token", "GET", "/api/v1/labels", "")
	require.Equal(t, 401, code, "a removed user is refused at once: %s", body)
	code, body = do("new-token", "GET", "/api/v1/labels", "")
	require.Equal(t, 200, code, body)
	code, body = do("new-token", "POST", "/api/v1/import/prometheus", wide)
	require.Equal(t, 204, code, "the raised limit applies: %s", body)

	// A broken file and a file without users change nothing.
	require.NoError(t, os.WriteFile(cfg, []byte("auth: [this is not a map\n"), 0o644))
	code, body = do("root", "POST", "/-/reload", "")
	require.Equal(t, 500, code, body)
	require.Contains(t, body, "failed to reload config")
	code, body = do("root", "GET", "/api/v1/status/runtimeinfo", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"reloadConfigSuccess":false`, "a failed reload shows")
	code, body = do("root", "GET", "/api/v1/status/config", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "max_labels_per_series: 8", "the config last loaded, not the broken file: %s", body)
	require.NoError(t, os.WriteFile(cfg, []byte("limits: {}\n"), 0o644))
	code, body = do("root", "POST", "/-/reload", "")
	require.Equal(t, 500, code, body)
	require.Contains(t, body, "needs a restart")
	code, body = do("new-token", "GET", "/api/v1/labels", "")
	require.Equal(t, 200, code, "the previous users still hold: %s", body)
	code, _ = do("", "GET", "/api/v1/labels", "")
	require.Equal(t, 401, code, "authentication is still on")

	// Sections read only at start are named.
	write(admin+newReader, "    default: {max_labels_per_series: 8}\n")
	require.NoError(t, appendFile(cfg, "itsm:\n  receivers: []\n"))
	code, body = do("root", "POST", "/-/reload", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "need a restart: itsm")

	// SIGHUP reloads too: a user added by signal works.
	write(admin+newReader+fmt.Sprintf("    - {name: hup, token_sha256: %s, roles: [read], tenants: [default]}\n", auth.HashToken("hup-token")), "    default: {}\n")
	require.NoError(t, syscall.Kill(db.PID(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		code, _ := do("hup-token", "GET", "/api/v1/labels", "")
		return code == 200
	}, 10*time.Second, 100*time.Millisecond, "SIGHUP reloads users")
	require.True(t, bytes.Contains([]byte(db.Log()), []byte("config reloaded")), db.Log())
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
