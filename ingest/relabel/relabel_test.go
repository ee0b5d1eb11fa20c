package relabel

import (
	"context"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestRelabelAtIngest(t *testing.T) {
	var r Rules
	require.NoError(t, yaml.Unmarshal([]byte(`
labels: {source: snmp}
relabel_configs:
  - {source_labels: [__name__], regex: 'debug_.*', action: drop}
  - {source_labels: [ifDescr], regex: '(.*)', target_label: port, replacement: 'p-$1'}
  - {regex: 'ifDescr', action: labeldrop}
`), &r))
	require.NoError(t, r.Validate())
	db := st.Open(t, nil)
	w := Wrap(db, &r)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "ifHCInOctets", "ifDescr", "eth0"), storage.Sample{T: 1, V: 10})
	b.Add(labels.FromStrings("__name__", "debug_x"), storage.Sample{T: 1, V: 1})
	require.NoError(t, w.Write(context.Background(), "default", &b))
	got := st.Read(t, db, "default", 0, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.Equal(t, map[string][]storage.Sample{
		`{__name__="ifHCInOctets", port="p-eth0", source="snmp"}`: {{T: 1, V: 10}},
	}, got)

	require.Same(t, storage.Writer(db), Wrap(db, &Rules{}), "no rules: no wrapper")
	bad := Rules{}
	require.NoError(t, yaml.Unmarshal([]byte(`relabel_configs: [{action: hashmod, target_label: x}]`), &bad))
	require.Error(t, bad.Validate())
}
