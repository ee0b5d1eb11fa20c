package kpiaccuracy

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestAccuracy replays 140 synthetic KPIs (fixed seed) and holds the
// targets: at least 90% of breaches warned an hour or more ahead, at most
// 10% of warnings false.
func TestAccuracy(t *testing.T) {
	rep, _, err := Run(seedFromEnv(), 140)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Markdown())
	if rep.Breaches < 40 || rep.Cases-rep.Breaches < 40 {
		t.Fatalf("the suite needs both kinds: %d breaches of %d", rep.Breaches, rep.Cases)
	}
	if rep.Recall1h < 0.9 {
		t.Errorf("%.1f%% of breaches warned ≥1h ahead, want ≥ 90%%", 100*rep.Recall1h)
	}
	if rep.FalseShare > 0.1 {
		t.Errorf("%.1f%% of warnings false, want ≤ 10%%", 100*rep.FalseShare)
	}
	if rep.MedianLead < time.Hour {
		t.Errorf("median lead %s", rep.MedianLead)
	}
}

func seedFromEnv() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("KPI_SEED"), 10, 64); err == nil {
		return s
	}
	return 1
}
