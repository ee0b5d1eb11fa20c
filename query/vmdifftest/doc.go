// Package vmdifftest compares tsdb's answers to MetricsQL-only queries
// (those Prometheus's parser refuses) with a real VictoriaMetrics
// single-node given the same data: the VictoriaMetrics half of issue 17.
// It holds only tests; query/difftest does the same for PromQL against
// Prometheus 3.14.
//
// Today's differences are listed in testdata/known_mismatches.txt, which
// the test checks both ways: a new difference fails it, and so does a
// listed one that is gone. VMDIFFTEST_UPDATE=1 rewrites the list. Run it
// with -count=1: go test caches the result, but not the tsdb binary it
// builds from the tree.
package vmdifftest
