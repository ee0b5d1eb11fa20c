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
		// Issue 17: what promtool rejects, with its parser's words.
		"bad_for_repeated_unit.yml":        `not a valid duration string: "5m5m"`,
		"bad_for_negative.yml":             `not a valid duration string: "-5m"`,
		"bad_expr_end_of_input.yml":        "could not parse expression: 1:5: parse error: unexpected end of input",
		"bad_expr_unclosed.yml":            "could not parse expression: 1:16: parse error: unclosed left parenthesis",
		"bad_expr_unknown_function.yml":    `could not parse expression: 1:1: parse error: unknown function with name "foo"`,
		"bad_expr_range_duration.yml":      `could not parse expression: 1:9: parse error: not a valid duration string: "5m5m"`,
		"bad_expr_duration_syntax.yml":     `could not parse expression: 1:9: parse error: bad number or duration syntax: "5"`,
		"bad_expr_metricsql.yml":           `could not parse expression: 1:9: parse error: unexpected identifier "default"`,
		"bad_expr_empty_selector.yml":      "could not parse expression: 1:1: parse error: vector selector must contain at least one non-empty matcher",
		"bad_expr_offset_before_range.yml": "could not parse expression: 1:14: parse error: no offset modifiers allowed before range",
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
			require.Contains(t, want, name, "a new bad file needs its expected message")
			require.Contains(t, ours.String(), want[name], name)
			// A parse error reads as promtool's, position included.
			// Prometheus 3's parser says "bad number or duration syntax"
			// where Debian's promtool 2.42 says "bad duration syntax".
			if _, perr, ok := strings.Cut(string(theirOut), "could not parse expression: "); ok && name != "bad_expr_duration_syntax.yml" {
				perr, _, _ = strings.Cut(perr, "\n")
				require.Contains(t, ours.String(), "could not parse expression: "+perr, "%s: promtool says\n%s", name, theirOut)
			}
		} else {
			require.Contains(t, ours.String(), "SUCCESS")
		}
	}
}
