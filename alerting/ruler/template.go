package ruler

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/alerttmpl"
)

// expand renders a label or annotation template as Prometheus's ruler
// does: with Prometheus's functions and variables ($labels,
// $externalLabels, $externalURL, $value) through alerttmpl, the same
// table `tsdb rules check` checks with. name is the template's name in
// errors ("__alert_" + the alert name, as Prometheus names it); ls are
// the sample's labels; ts is in milliseconds.
func (r *Ruler) expand(ctx context.Context, tenant, name, text string, ls labels.Labels, value float64, ts int64) (string, error) {
	d := alerttmpl.Data{Labels: ls.Map(), ExternalLabels: r.opts.ExternalLabels, ExternalURL: r.opts.ExternalURL, Value: value}
	return alerttmpl.Expand(ctx, name, text, d, time.UnixMilli(ts), alerttmpl.Query(r.eng, tenant), r.externalURL)
}
