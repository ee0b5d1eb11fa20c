package query

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// ValueType is the type of a query result, as the Prometheus API names it.
type ValueType string

// The result types.
const (
	ValueScalar ValueType = "scalar"
	ValueVector ValueType = "vector"
	ValueMatrix ValueType = "matrix"
	ValueString ValueType = "string"
)

// Point is one value of a series at a timestamp in milliseconds: a float
// F, or a native histogram H when H is not nil. A histogram may be shared
// by several points; it is never changed once made (copy it first).
type Point struct {
	T int64
	F float64
	H *histogram.FloatHistogram
}

// Series is a labelled list of points in ascending time.
type Series struct {
	Metric labels.Labels
	Points []Point
}

// Result is what a query returns. A vector has one point per series (at
// the evaluation time), a matrix any number; a scalar is Scalar, a string
// String. Warnings and Infos are the annotations, as Prometheus words them.
type Result struct {
	Type     ValueType
	Series   []Series
	Scalar   Point
	String   string
	Warnings []string
	Infos    []string
}

// Sample is one element of an instant vector during evaluation.
type Sample struct {
	Metric labels.Labels
	T      int64
	F      float64
	H      *histogram.FloatHistogram // a native histogram when not nil
}

// Vector is an instant vector at one evaluation step.
type Vector []Sample

// Matrix is a set of series; during evaluation it holds an instant vector
// over all steps of a range evaluation (one point per step where present).
type Matrix []Series
