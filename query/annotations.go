package query

// The annotations of native histograms, worded as Prometheus words them
// (util/annotations), without the position in the query.

// withMetricName is Prometheus's maybeAddMetricName.
func withMetricName(msg, name string) string { return msg + forMetricName(name) }

func (ev *evaluator) warnMixedFloatsHistograms(name string) {
	ev.warn("PromQL warning: encountered a mix of histograms and floats for metric name %q", name)
}

func (ev *evaluator) warnMixedFloatsHistogramsAggregation() {
	ev.warn("PromQL warning: encountered a mix of histograms and floats for aggregation")
}

func (ev *evaluator) warnMixedClassicNative(name string) {
	ev.warn("%s", withMetricName("PromQL warning: vector contains a mix of classic and native histograms", name))
}

func (ev *evaluator) warnNotCounter(name string) {
	ev.warn("PromQL warning: this native histogram metric is not a counter: %q", name)
}

func (ev *evaluator) warnNotGauge(name string) {
	ev.warn("PromQL warning: this native histogram metric is not a gauge: %q", name)
}

func (ev *evaluator) warnMixedExponentialCustom(name string) {
	ev.warn("PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name %q", name)
}

func (ev *evaluator) warnIncompatibleBucketLayout(op string) {
	ev.warn("PromQL warning: incompatible bucket layout encountered for binary operator %s", op)
}

func (ev *evaluator) warnCounterResetCollision(op string) {
	ev.warn("PromQL warning: conflicting counter resets during histogram %s", op)
}

func (ev *evaluator) infoIncompatibleTypes(op, lhs, rhs string) {
	ev.info("PromQL info: incompatible sample types encountered for binary operator %q: %s %s %s", op, lhs, op, rhs)
}

func (ev *evaluator) infoHistogramIgnoredInAggregation(aggr string) {
	ev.info("PromQL info: ignored histogram in %s aggregation", aggr)
}

func (ev *evaluator) infoHistogramIgnoredInMixedRange(name string) {
	ev.info("PromQL info: ignored histograms in a range containing both floats and histograms for metric name %q", name)
}

func (ev *evaluator) infoMismatchedCustomBuckets(op string) {
	ev.info("PromQL info: mismatched custom buckets were reconciled during %s", op)
}

func (ev *evaluator) infoQuantileNaNResult(name string) {
	ev.info("%s", withMetricName("PromQL info: input to histogram_quantile has NaN observations, result is NaN", name))
}

func (ev *evaluator) infoQuantileNaNSkew(name string) {
	ev.info("%s", withMetricName("PromQL info: input to histogram_quantile has NaN observations, result is skewed higher", name))
}

func (ev *evaluator) infoFractionNaNs(name string) {
	ev.info("%s", withMetricName("PromQL info: input to histogram_fraction has NaN observations, which are excluded from all fractions", name))
}
