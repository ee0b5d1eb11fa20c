package remotewrite

import (
	"math"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/storage"
)

// metricTypes maps the MetricType enum of both versions (1.0's UNKNOWN is
// 2.0's UNSPECIFIED) to the names /api/v1/metadata answers.
var metricTypes = [...]string{"unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"}

func metricType(v uint64) string {
	if v < uint64(len(metricTypes)) {
		return metricTypes[v]
	}
	return "unknown" // a type newer than this decoder
}

// decodeV1Exemplar reads a prometheus.Exemplar: labels (1), value (2),
// timestamp (3).
func (d *Decoder) decodeV1Exemplar(m []byte) (storage.Exemplar, error) {
	var e storage.Exemplar
	d.exSB.Reset()
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return e, err
		}
		switch {
		case field == 1 && typ == protowire.BytesType:
			lm, err := r.bytes()
			if err != nil {
				return e, err
			}
			name, value, err := decodeLabel(lm)
			if err != nil {
				return e, err
			}
			d.exSB.Add(name, value)
		default:
			if err := exemplarValueField(&r, field, typ, &e); err != nil {
				return e, err
			}
		}
	}
	d.exSB.Sort()
	e.Labels = d.exSB.Labels()
	return e, nil
}

// decodeV2Exemplar reads an io.prometheus.write.v2.Exemplar: labels_refs
// (1) into the symbols, value (2), timestamp (3).
func (d *Decoder) decodeV2Exemplar(m []byte) (storage.Exemplar, error) {
	var e storage.Exemplar
	d.exRefs = d.exRefs[:0]
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return e, err
		}
		if field == 1 {
			if d.exRefs, err = readRefs(&r, typ, d.exRefs); err != nil {
				return e, err
			}
			continue
		}
		if err := exemplarValueField(&r, field, typ, &e); err != nil {
			return e, err
		}
	}
	var err error
	e.Labels, err = d.refLabels(&d.exSB, d.exRefs, "exemplar label")
	return e, err
}

// exemplarValueField reads the value (2) and timestamp (3) of an
// exemplar of either version, and skips other fields.
func exemplarValueField(r *pbReader, field protowire.Number, typ protowire.Type, e *storage.Exemplar) error {
	switch {
	case field == 2 && typ == protowire.Fixed64Type:
		v, err := r.fixed64()
		e.V = math.Float64frombits(v)
		return err
	case field == 3 && typ == protowire.VarintType:
		v, err := r.varint()
		e.T = int64(v)
		return err
	default:
		return r.skip(field, typ)
	}
}

// readRefs reads a repeated uint32 field of symbol references, packed or
// not, appending to refs.
func readRefs(r *pbReader, typ protowire.Type, refs []uint32) ([]uint32, error) {
	switch typ {
	case protowire.BytesType:
		m, err := r.bytes()
		if err != nil {
			return refs, err
		}
		pr := pbReader{b: m}
		for !pr.done() {
			v, err := pr.varint()
			if err != nil {
				return refs, err
			}
			if v > math.MaxUint32 {
				return refs, malformed("label reference %d overflows uint32", v)
			}
			refs = append(refs, uint32(v))
		}
		return refs, nil
	case protowire.VarintType:
		v, err := r.varint()
		if err != nil {
			return refs, err
		}
		if v > math.MaxUint32 {
			return refs, malformed("label reference %d overflows uint32", v)
		}
		return append(refs, uint32(v)), nil
	default:
		return refs, malformed("label references of wire type %d", typ)
	}
}

// refLabels builds the labels of name/value symbol reference pairs.
func (d *Decoder) refLabels(sb *labels.ScratchBuilder, refs []uint32, what string) (labels.Labels, error) {
	if len(refs)%2 != 0 {
		return labels.EmptyLabels(), malformed("odd number (%d) of %s references", len(refs), what)
	}
	sb.Reset()
	for i := 0; i < len(refs); i += 2 {
		n, v := refs[i], refs[i+1]
		if int(n) >= len(d.symbols) || int(v) >= len(d.symbols) {
			return labels.EmptyLabels(), malformed("%s reference %d/%d outside the %d symbols", what, n, v, len(d.symbols))
		}
		sb.Add(d.symbols[n], d.symbols[v])
	}
	sb.Sort()
	return sb.Labels(), nil
}

// decodeV1Metadata reads a prometheus.MetricMetadata: type (1),
// metric_family_name (2), help (4), unit (5).
func decodeV1Metadata(m []byte) (storage.Metadata, error) {
	md := storage.Metadata{Type: "unknown"}
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return md, err
		}
		switch {
		case field == 1 && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return md, err
			}
			md.Type = metricType(v)
		case (field == 2 || field == 4 || field == 5) && typ == protowire.BytesType:
			v, err := r.bytes()
			if err != nil {
				return md, err
			}
			switch field {
			case 2:
				md.Family = string(v)
			case 4:
				md.Help = string(v)
			default:
				md.Unit = string(v)
			}
		default:
			if err := r.skip(field, typ); err != nil {
				return md, err
			}
		}
	}
	if md.Family == "" {
		return md, malformed("metadata without metric_family_name")
	}
	return md, nil
}

// v2Metadata is a series' io.prometheus.write.v2.Metadata as read: type
// (1), help_ref (3), unit_ref (4).
type v2Metadata struct {
	typ, help, unit uint64
	set             bool
}

func decodeV2Metadata(m []byte) (v2Metadata, error) {
	var md v2Metadata
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return md, err
		}
		if typ != protowire.VarintType || (field != 1 && field != 3 && field != 4) {
			if err := r.skip(field, typ); err != nil {
				return md, err
			}
			continue
		}
		v, err := r.varint()
		if err != nil {
			return md, err
		}
		switch field {
		case 1:
			md.typ = v
		case 3:
			md.help = v
		default:
			md.unit = v
		}
	}
	md.set = md.typ != 0 || md.help != 0 || md.unit != 0
	return md, nil
}

// addV2Metadata appends the metadata of a 2.0 series named name to b,
// unless it repeats the entry before (the series of one family come
// together). The family of the _bucket, _count and _sum series of a
// classic histogram or summary is the name without the suffix, as in
// the exposition formats.
func (d *Decoder) addV2Metadata(b *storage.Batch, name string, md v2Metadata) error {
	if int(md.help) >= len(d.symbols) || int(md.unit) >= len(d.symbols) {
		return malformed("metadata reference %d/%d outside the %d symbols", md.help, md.unit, len(d.symbols))
	}
	m := storage.Metadata{Family: name, Type: metricType(md.typ), Help: d.symbols[md.help], Unit: d.symbols[md.unit]}
	switch m.Type {
	case string(model.MetricTypeHistogram), string(model.MetricTypeGaugeHistogram), string(model.MetricTypeSummary):
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && f != "" {
				m.Family = f
				break
			}
		}
	}
	if n := len(b.Metadata); n > 0 && b.Metadata[n-1] == m {
		return nil
	}
	b.Metadata = append(b.Metadata, m)
	d.n.Metadata++
	if d.over() {
		return d.reserveAhead()
	}
	return nil
}
