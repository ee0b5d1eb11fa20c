// Command tsdb is the time-series database and alert engine: one binary
// that ingests, stores and serves metrics.
//
//	tsdb serve --listen 127.0.0.1:9090 --data ./data --retention 30d
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "serve":
		return exitCode("serve", serve(args[1:]))
	case "rules":
		switch {
		case len(args) >= 2 && args[1] == "check":
			return rulesCheck(args[2:], os.Stdout)
		case len(args) >= 2 && args[1] == "replay":
			return exitCode("rules replay", replay(args[2:], os.Stdout))
		}
		return subUsage(args, "usage: tsdb rules check [--metricsql] FILE... | tsdb rules replay --rules FILE --from T [--to T] [--dry-run]")
	case "kpis":
		if len(args) >= 2 && args[1] == "backtest" {
			return exitCode("kpis backtest", kpisBacktest(args[2:], os.Stdout))
		}
		return subUsage(args, "usage: tsdb kpis backtest --config.file F --data DIR --kpi NAME [--tenant T] [--from T] [--to T] [--json]")
	case "backup", "restore", "import", "export":
		fn := map[string]func([]string, io.Writer) error{"backup": backup, "restore": restore, "import": bulkImport, "export": bulkExport}[args[0]]
		return exitCode(args[0], fn(args[1:], os.Stderr))
	case "cluster":
		if len(args) >= 2 && args[1] == "retire-node" {
			return exitCode("cluster retire-node", clusterRetireNode(args[2:], os.Stdout))
		}
		return subUsage(args, "usage: tsdb cluster retire-node --config.file F [--force] <zone>.<node>")
	case "auth":
		if len(args) >= 2 && args[1] == "hash" {
			if err := authHash(args[2:], os.Stdin, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "tsdb auth hash:", err)
				return 2
			}
			return 0
		}
		return subUsage(args, "usage: echo SECRET | tsdb auth hash --token|--password")
	case "version", "--version", "-version":
		fmt.Println("tsdb", version)
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "tsdb: unknown command %q\n", args[0])
		usage()
		return 2
	}
}

// exitCode reports err of subcommand name and returns the exit status: 0
// also when the user asked for help (the flag set printed the usage).
func exitCode(name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(os.Stderr, "tsdb %s: %v\n", name, err)
	return 1
}

// subUsage prints the usage of a command group (tsdb rules, tsdb kpis, …)
// whose subcommand is missing or unknown: to stdout with status 0 when
// help was asked for, else to stderr with status 2.
func subUsage(args []string, text string) int {
	if isHelp(args[1:]) {
		fmt.Println(text)
		return 0
	}
	fmt.Fprintln(os.Stderr, text)
	return 2
}

// isHelp reports whether args ask for help before any "--".
func isHelp(args []string) bool {
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[:i]
	}
	return slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" })
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: tsdb <command> [flags]

commands:
  serve         run the server (tsdb serve --help lists its flags)
  rules check   check rule files as promtool check rules does
  rules replay  evaluate rules over history (--dry-run: backtest)
  kpis backtest replay a KPI over history: when it would have warned, how early, false warnings
  backup        copy a consistent snapshot of a running server (--url, --to)
  restore       restore a backup into a new data folder (--from, --data)
  export        write series to a file: JSON lines or Prometheus text (--match, --out)
  import        send a file of Prometheus text or JSON lines to a server (--file)
  cluster retire-node  remove a node gone for good from the cluster's registry (--config.file)
  auth hash     hash a token (--token) or password (--password) read from stdin
  version   print the version
`)
}
