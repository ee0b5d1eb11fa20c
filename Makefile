# The contract: make build, make test, make bench, make run.
GO      ?= go
# pebblegozstd: Pebble's pure-Go zstd instead of compiling the C library.
TAGS    ?= pebblegozstd
BIN     := bin/tsdb
PKGS    := ./...
FUZZTIME ?= 30s
LISTEN  ?= 127.0.0.1:9090
DATA    ?= data
CONFIG  ?=

.PHONY: build test chaos check lint bench bench-full bench-cluster gobench compare kpi-accuracy run fuzz cover clean console-vendor

build:
	$(GO) build -tags $(TAGS) -o $(BIN) ./cmd/tsdb

# Every test: static checks, all tests with invariants on (the import
# boundaries of internal/lint among them), then the race detector on the
# concurrent packages.
test: check build
	$(GO) test -tags $(TAGS),invariants -timeout 15m $(PKGS)
	$(GO) test -race -tags $(TAGS) -timeout 15m ./storage/... ./ingest/... ./alerting/...

# Static checks: gofmt, go vet and staticcheck (pinned in go.mod as a Go tool
# dependency; its first build takes about 2 minutes). The import boundaries
# are a test (internal/lint), so they run with the tests.
# The adversarial suite alone (it also runs in make test): hostile
# queries, bodies and clients, overload, and the crash drills (kill -9
# during ingest and after a delete, an interrupted backup, a full disk on a
# small tmpfs) against the real binary.
CHAOS := Chaos|TestHostileIngestStaysBounded|TestInfluxListenersNeedATenantWithAuth|TestSlowClientsDoNotLockOut|TestOverloadShedsAndKeepsServing|TestKill9LosesNoAcknowledgedWrite|TestDiskFullEndToEnd|TestBackupInterruptedDeletesItsSnapshot|TestStaleSnapshotsRemovedAtStart|TestMemoryBudgetSheds
chaos: build
	$(GO) test -tags $(TAGS),invariants -timeout 15m -run '$(CHAOS)' -v ./cmd/tsdb/

check lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS),invariants $(PKGS)
	$(GO) tool staticcheck -tags $(TAGS),invariants $(PKGS)
	$(GO) test -tags $(TAGS) -count=1 ./internal/lint/

# Side by side with Debian's prometheus on every workload; the summary
# table goes into the README. bench is the short version (about 15
# minutes), bench-full the long one (1M series; an hour or more).
BENCH_ARGS = --tsdb $(BIN) --query-runs 5 --query-duration 5s
bench: build bin/compare
	@command -v prometheus >/dev/null || apt-get install -y prometheus
	bin/compare $(BENCH_ARGS) --workload node --series 20000 --out benchmarks/results/short/node
	bin/compare $(BENCH_ARGS) --workload devops --series 6400 --out benchmarks/results/short/devops
	bin/compare $(BENCH_ARGS) --workload iot --series 9000 --interval 60s --out benchmarks/results/short/iot
	bin/compare $(BENCH_ARGS) --workload churn --series 10000 --out benchmarks/results/short/churn
	bin/compare $(BENCH_ARGS) --workload highcard --series 100000 --samples 8 --sustain 1m --out benchmarks/results/short/highcard
	bin/compare $(BENCH_ARGS) --workload backfill --series 200 --interval 60s --samples 0 --out benchmarks/results/short/backfill
	$(GO) run ./benchmarks/cmd/summary --dir benchmarks/results/short --readme README.md

FULL_ARGS = --tsdb $(BIN) --query-runs 10 --query-duration 30s
bench-full: build bin/compare
	@command -v prometheus >/dev/null || apt-get install -y prometheus
	bin/compare $(FULL_ARGS) --workload node --series 100000 --out benchmarks/results/full/node
	bin/compare $(FULL_ARGS) --workload devops --series 100000 --out benchmarks/results/full/devops
	bin/compare $(FULL_ARGS) --workload iot --series 100000 --interval 60s --out benchmarks/results/full/iot
	bin/compare $(FULL_ARGS) --workload churn --series 100000 --out benchmarks/results/full/churn
	bin/compare $(FULL_ARGS) --workload highcard --series 1000000 --samples 8 --sustain 2m --out benchmarks/results/full/highcard
	bin/compare $(FULL_ARGS) --workload backfill --series 2000 --interval 60s --samples 0 --out benchmarks/results/full/backfill
	$(GO) run ./benchmarks/cmd/summary --dir benchmarks/results/full --readme README.md

# The cluster on Kafka against a single node (docs/cluster.md, "Sizing"):
# a real broker, three nodes in two zones, the same remote-write bodies;
# write cost, consumer lag, fan-out query latency, a kill -9 failover.
# About 3 minutes at 20k series on 2 cores; CLUSTER_SERIES=100000 for the
# issue's size.
CLUSTER_SERIES  ?= 20000
CLUSTER_SAMPLES ?= 120
CLUSTER_OUT     ?= benchmarks/results/cluster
bench-cluster:
	$(GO) test -tags $(TAGS) -run '^$$' -bench BenchmarkCluster -benchtime 1x -timeout 30m ./benchmarks/cluster \
	  -args -series $(CLUSTER_SERIES) -samples $(CLUSTER_SAMPLES) -out $(abspath $(CLUSTER_OUT))

bin/compare: $(wildcard benchmarks/*/*.go benchmarks/cmd/compare/*.go internal/apptest/refbin/*.go)
	$(GO) build -o bin/compare ./benchmarks/cmd/compare

# Go benchmarks of the hot paths.
gobench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem -benchtime 1s $(PKGS)

# Side by side with Debian's prometheus: remote-write ingest, bytes/sample,
# RSS/series. Results go to benchmarks/results/.
SERIES  ?= 50000,100000
MODEL   ?= recorded
compare: build
	@command -v prometheus >/dev/null || apt-get install -y prometheus
	$(GO) run -tags $(TAGS) ./benchmarks/cmd/compare --series $(SERIES) --model $(MODEL) --tsdb $(BIN) --out benchmarks/results/$(MODEL)

# KPI breach-warning accuracy on synthetic KPIs, three seeds.
kpi-accuracy:
	$(GO) run -tags $(TAGS) ./benchmarks/cmd/kpiaccuracy --seeds 1,2,3 --cases 20 --frontier --out benchmarks/results/kpi-accuracy

run: build
	$(BIN) serve --listen $(LISTEN) --data $(DATA) --web.enable-admin-api --rules examples/rules.yml $(if $(CONFIG),--config.file $(CONFIG),--first-run)

fuzz:
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDenseRoundTrip -fuzztime $(FUZZTIME) ./storage/chunkenc/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDenseDecode -fuzztime $(FUZZTIME) ./storage/chunkenc/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzXORIterator -fuzztime $(FUZZTIME) ./storage/chunkenc/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzReplay -fuzztime $(FUZZTIME) ./storage/wal/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDecodeV1 -fuzztime $(FUZZTIME) ./ingest/remotewrite/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDecodeV2 -fuzztime $(FUZZTIME) ./ingest/remotewrite/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzHandler -fuzztime $(FUZZTIME) ./ingest/remotewrite/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./ingest/influx/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./ingest/promtext/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./ingest/jsonl/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzHandlers -fuzztime $(FUZZTIME) ./web/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzIdentify -fuzztime $(FUZZTIME) ./internal/auth/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzITSMAPI -fuzztime $(FUZZTIME) ./web/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzKPIAPI -fuzztime $(FUZZTIME) ./web/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzRulesAPI -fuzztime $(FUZZTIME) ./web/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzRouter -fuzztime $(FUZZTIME) ./cmd/tsdb/

cover:
	$(GO) test -tags $(TAGS) -coverprofile=cover.out $(PKGS)
	$(GO) tool cover -func=cover.out | tail -1

# The console's one front-end package (uPlot), pinned with its checksum in
# internal/console/package-lock.json. The copies in assets/vendor are
# committed, so building tsdb needs no npm; this target fetches them again
# and fails if they differ from what is committed.
CONSOLE := internal/console
console-vendor:
	cd $(CONSOLE) && npm ci --no-audit --no-fund --ignore-scripts
	cp $(CONSOLE)/node_modules/uplot/dist/uPlot.esm.js $(CONSOLE)/node_modules/uplot/dist/uPlot.min.css $(CONSOLE)/assets/vendor/
	cp $(CONSOLE)/node_modules/uplot/LICENSE $(CONSOLE)/assets/vendor/uPlot.LICENSE
	git diff --exit-code --stat -- $(CONSOLE)/assets/vendor

clean:
	rm -rf bin cover.out
