package query

import (
	"cmp"
	"slices"

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

// Point is one float value of a series at a timestamp in milliseconds.
// A native histogram's point is in Series.Histograms; its F means
// nothing.
type Point struct {
	T int64
	F float64
}

// Series is a labelled list of points in ascending time.
type Series struct {
	Metric labels.Labels
	Points []Point
	// Histograms is nil for a series of floats only (so Points holds no
	// pointer and costs the garbage collector nothing). Otherwise it
	// runs beside Points: Histograms[i] is the native histogram at
	// Points[i], nil where that point is a float. A histogram may be
	// shared by several points and results; it is never changed once
	// made (copy it first).
	Histograms []*histogram.FloatHistogram
}

// H returns the histogram at point i, nil when it is a float.
func (s *Series) H(i int) *histogram.FloatHistogram {
	if s.Histograms == nil {
		return nil
	}
	return s.Histograms[i]
}

// add appends a point, a float when h is nil.
func (s *Series) add(p Point, h *histogram.FloatHistogram) {
	if h != nil && s.Histograms == nil {
		s.Histograms = make([]*histogram.FloatHistogram, len(s.Points), cap(s.Points))
	}
	s.Points = append(s.Points, p)
	if s.Histograms != nil {
		s.Histograms = append(s.Histograms, h)
	}
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
	// Tier names what answered the query's selectors: "raw" for raw
	// samples, a downsampled tier's resolution ("5m"), or several joined
	// by "+" ("1h+raw"). SamplesRead counts the raw samples and tier
	// buckets read from storage.
	Tier        string
	SamplesRead int64
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

// sortPoints orders the points of s by time, its histograms with them.
func sortPoints(s *Series) {
	if s.Histograms == nil {
		slices.SortFunc(s.Points, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
		return
	}
	idx := make([]int, len(s.Points))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s.Points[a].T, s.Points[b].T) })
	pts := make([]Point, len(idx))
	hs := make([]*histogram.FloatHistogram, len(idx))
	for i, j := range idx {
		pts[i], hs[i] = s.Points[j], s.Histograms[j]
	}
	s.Points, s.Histograms = pts, hs
}
