// Package query evaluates MetricsQL/PromQL over storage. This first part
// holds what every reader shares: parsing series selectors (the match[]
// parameters of the HTTP API) into label matchers.
//
//	sets, err := query.ParseSelector(`{job="node", instance=~"db.*"}`)
//	// sets[0] holds the two matchers; MetricsQL's `or` inside braces
//	// yields one set per alternative.
package query
