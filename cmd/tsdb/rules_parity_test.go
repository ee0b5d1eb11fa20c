package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestRulesCheckParity: `tsdb rules check` accepts exactly the files the
// real promtool accepts, and names the problem in those it rejects.
func TestRulesCheckParity(t *testing.T) {
	promtool := apptest.NeedBinary(t, "promtool", "prometheus")
	files, err := filepath.Glob("../../alerting/rulefmt/testdata/*.yml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 10)
	want := map[string]string{ // what our message must say
		"bad_expr.yml":                  "could not parse expression",
		"bad_both.yml":                  "only one of 'record' and 'alert' must be set",
		"bad_neither.yml":               "one of 'record' or 'alert' must be set",
		"bad_duplicate_group.yml":       "is repeated in the same file",
		"bad_unknown_field.yml":         "field severity not found",
		"bad_recording_annotations.yml": "invalid field 'annotations' in recording rule",
		"bad_label_name.yml":            "invalid label name",
		"bad_template.yml":              "template",
		"bad_record_name.yml":           "invalid recording rule name",
		"bad_duration.yml":              "not a valid duration string",
	}
	for _, f := range files {
		name := filepath.Base(f)
		theirs := exec.Command(promtool, "check", "rules", f)
		theirOut, _ := theirs.CombinedOutput()
		var ours bytes.Buffer
		code := rulesCheck([]string{f}, &ours)
		require.Equal(t, theirs.ProcessState.ExitCode() == 0, code == 0,
			"%s: promtool exit %d:\n%s\ntsdb exit %d:\n%s", name, theirs.ProcessState.ExitCode(), theirOut, code, ours.String())
		if strings.HasPrefix(name, "bad_") {
			require.Contains(t, ours.String(), want[name], name)
		} else {
			require.Contains(t, ours.String(), "SUCCESS")
		}
	}
}
