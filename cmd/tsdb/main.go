// Command tsdb is the time-series database and alert engine: one binary
// that ingests, stores and serves metrics.
//
//	tsdb serve --listen 127.0.0.1:9090 --data ./data --retention 30d
package main

import (
	"fmt"
	"io"
	"os"
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
		if err := serve(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "tsdb serve:", err)
			return 1
		}
		return 0
	case "rules":
		switch {
		case len(args) >= 2 && args[1] == "check":
			return rulesCheck(args[2:], os.Stdout)
		case len(args) >= 2 && args[1] == "replay":
			if err := replay(args[2:], os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "tsdb rules replay:", err)
				return 1
			}
			return 0
		}
		fmt.Fprintln(os.Stderr, "usage: tsdb rules check FILE... | tsdb rules replay --rules FILE --from T [--to T] [--dry-run]")
		return 2
	case "kpis":
		if len(args) >= 2 && args[1] == "backtest" {
			if err := kpisBacktest(args[2:], os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "tsdb kpis backtest:", err)
				return 1
			}
			return 0
		}
		fmt.Fprintln(os.Stderr, "usage: tsdb kpis backtest --config.file F --data DIR --kpi NAME [--tenant T] [--from T] [--to T] [--json]")
		return 2
	case "backup", "restore", "import", "export":
		fn := map[string]func([]string, io.Writer) error{"backup": backup, "restore": restore, "import": bulkImport, "export": bulkExport}[args[0]]
		if err := fn(args[1:], os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "tsdb %s: %v\n", args[0], err)
			return 1
		}
		return 0
	case "auth":
		if len(args) >= 2 && args[1] == "hash" {
			if err := authHash(args[2:], os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "tsdb auth hash:", err)
				return 2
			}
			return 0
		}
		fmt.Fprintln(os.Stderr, "usage: echo SECRET | tsdb auth hash --token|--password")
		return 2
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
  auth hash     hash a token (--token) or password (--password) read from stdin
  version   print the version
`)
}
