// Package alerttmpl checks and expands the label and annotation templates
// of alerting rules with Prometheus's own template package
// (github.com/prometheus/prometheus/template): the same functions, the
// same variables ($labels, $externalLabels, $externalURL, $value) and the
// same output, byte for byte. It is the one function table of the house:
// `tsdb rules check` (package rulefmt) checks with it and the ruler
// expands with it, so a template that passes the check has at evaluation
// every function it named.
//
// What the package adds is the seam to our engine: Query turns an
// instant query of query.Engine into Prometheus's template.QueryFunc, as
// Prometheus's rules.EngineQueryFunc does (a scalar becomes a one-sample
// vector; a matrix or string is an error).
//
// Example:
//
//	q := alerttmpl.Query(eng, "default")
//	text, err := alerttmpl.Expand(ctx, "__alert_DiskFull",
//		"{{ $labels.instance | stripPort }} is at {{ $value | humanizePercentage }}",
//		alerttmpl.Data{Labels: map[string]string{"instance": "db-1:9100"}, Value: 0.97},
//		time.Now(), q, nil)
//	// text == "db-1 is at 97%"
package alerttmpl
