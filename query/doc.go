// Package query evaluates MetricsQL/PromQL over storage. This first part
// holds what every reader shares: parsing series selectors (the match[]
// parameters of the HTTP API) into label matchers.
//
//	sets, err := query.ParseSelector(`{job="node", instance=~"db.*"}`)
//	// sets[0] holds the two matchers; MetricsQL's `or` inside braces
//	// yields one set per alternative.
//
// The Engine bounds every query, whoever sends it (the API, the ruler,
// the KPIs): its text is measured before the parser sees it (length,
// nesting, terms once WITH templates are expanded: parse_bounds.go), and
// its evaluation counts the points it holds against Options.MaxSamples
// and looks at its deadline in every long loop (evaluator.addSamples,
// evaluator.spend).
package query
