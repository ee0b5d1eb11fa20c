package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/emsdb/tsdb/alerting/rulefmt"
)

// rulesCheck is `tsdb rules check [--metricsql] FILE…`: promtool check
// rules' output and exit code. Expressions must be PromQL, as promtool
// requires, unless --metricsql allows what the ruler also runs.
func rulesCheck(args []string, out io.Writer) int {
	var o rulefmt.Options
	o.PromQL = true
	var files []string
	if isHelp(args) {
		fmt.Fprintln(out, "usage: tsdb rules check [--metricsql] FILE...\n\nChecks rule files as promtool check rules does: PromQL by default, MetricsQL with --metricsql.")
		return 0
	}
	for _, a := range args {
		if a == "--metricsql" || a == "-metricsql" {
			o.PromQL = false
			continue
		}
		files = append(files, a)
	}
	if len(files) == 0 {
		fmt.Fprintln(out, "usage: tsdb rules check [--metricsql] FILE...")
		return 2
	}
	failed := false
	for _, f := range files {
		fmt.Fprintf(out, "Checking %s\n", f)
		rf, errs := rulefmt.ParseFileOptions(f, o)
		if len(errs) > 0 {
			failed = true
			fmt.Fprintf(out, "  FAILED:\n")
			for _, e := range errs {
				fmt.Fprintln(out, e.Error())
			}
			fmt.Fprintln(out)
			continue
		}
		n := 0
		for _, g := range rf.Groups {
			n += len(g.Rules)
		}
		fmt.Fprintf(out, "  SUCCESS: %d rules found\n\n", n)
	}
	if failed {
		return 1
	}
	return 0
}

// ruleFiles expands the --rules globs.
func ruleFiles(globs []string) ([]string, error) {
	var out []string
	for _, g := range globs {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("bad --rules pattern %q: %w", g, err)
		}
		if len(m) == 0 {
			if _, err := os.Stat(g); err != nil {
				return nil, fmt.Errorf("--rules %q matches no file", g)
			}
			m = []string{g}
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
