package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// The first-run configuration: ITSM, KPIs and alert rules about tsdb
// itself, which need no outside system (see firstrun/tsdb.yml).
var (
	//go:embed firstrun/tsdb.yml
	firstRunConfig []byte
	//go:embed firstrun/tsdb-alerts.yml
	firstRunAlerts []byte
)

// firstRunNamespace is the ruler namespace the first-run alert rules are
// stored under, in the self-monitoring tenant.
const firstRunNamespace = "first-run"

// writeFirstRunConfig puts the first-run configuration into the data
// folder, unless a copy is there already (the operator may have edited
// it), and returns its path: from then on it is an ordinary
// --config.file, reloaded and shown as any other.
func writeFirstRunConfig(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, "first-run.yml")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.WriteFile(path, firstRunConfig, 0o644); err != nil {
		return "", fmt.Errorf("write the first-run config: %w", err)
	}
	return path, nil
}

// firstRunGroups splits the first-run alert rules into the YAML of each
// group, as the ruler's config API stores them.
func firstRunGroups() ([][]byte, error) {
	var f struct {
		Groups []yaml.Node `yaml:"groups"`
	}
	if err := yaml.Unmarshal(firstRunAlerts, &f); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(f.Groups))
	for i := range f.Groups {
		b, err := yaml.Marshal(&f.Groups[i])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// installFirstRunRules stores the first-run alert rules for the
// self-monitoring tenant through the ruler's config API, once: when the
// namespace is there already (an earlier run, or the operator changed it
// through the API) it is left alone.
func (s *server) installFirstRunRules() error {
	tenant := s.cfg.selfTenant
	stored, err := s.ruler.StoredGroups(s.kv, tenant)
	if err != nil {
		return err
	}
	if _, ok := stored[firstRunNamespace]; ok {
		return nil
	}
	groups, err := firstRunGroups()
	if err != nil {
		return fmt.Errorf("first-run rules: %w", err)
	}
	for _, g := range groups {
		if err := s.ruler.PutGroup(s.kv, tenant, firstRunNamespace, g); err != nil {
			return fmt.Errorf("first-run rules: %w", err)
		}
	}
	s.log.Info("first run: alert rules about tsdb stored for its tenant (ruler config API)", "tenant", tenant, "namespace", firstRunNamespace, "groups", len(groups))
	return nil
}
