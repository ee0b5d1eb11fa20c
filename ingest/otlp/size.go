package otlp

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// Memory pdata takes for a decoded protobuf request: per message (a
// struct behind a pointer, its slot in a slice) and per byte of the body
// (strings and packed numbers copied), measured with the worst shapes
// found (TestDecodedSizeCoversPdata), rounded up.
const (
	messageBytes         = 176
	decodedExemplarBytes = 512 // ids, timestamps, value, attributes
	pointBytes           = 320 // the largest data point struct
	wireBytes            = 4
)

// The sub-message fields of OTLP's metrics protos, by message: the fields
// to descend into and the message each holds. Messages not listed have
// none worth counting.
type msgKind uint8

const (
	kRequest msgKind = iota
	kResourceMetrics
	kResource
	kScopeMetrics
	kScope
	kMetric
	kPoints // Gauge, Sum, Histogram, ExponentialHistogram, Summary: field 1
	kNumberPoint
	kHistogramPoint
	kExpPoint
	kSummaryPoint
	kExemplar
	kKeyValue
	kAnyValue
	kList // ArrayValue or KeyValueList: field 1
	kLeaf
)

var subMessages = [...]map[protowire.Number]msgKind{
	kRequest:         {1: kResourceMetrics},
	kResourceMetrics: {1: kResource, 2: kScopeMetrics},
	kResource:        {1: kKeyValue},
	kScopeMetrics:    {1: kScope, 2: kMetric},
	kScope:           {3: kKeyValue},
	kMetric:          {5: kPoints, 7: kPoints, 9: kPoints, 10: kPoints, 11: kPoints, 12: kKeyValue},
	kPoints:          {1: kLeaf}, // resolved by the metric field below
	kNumberPoint:     {5: kExemplar, 7: kKeyValue},
	kHistogramPoint:  {8: kExemplar, 9: kKeyValue},
	kExpPoint:        {1: kKeyValue, 8: kLeaf, 9: kLeaf, 11: kExemplar},
	kSummaryPoint:    {6: kLeaf, 7: kKeyValue},
	kExemplar:        {7: kKeyValue},
	kKeyValue:        {2: kAnyValue},
	kAnyValue:        {5: kList, 6: kList},
	kList:            {1: kAnyValue}, // a KeyValueList's KeyValue counts alike
	kLeaf:            {},
}

// pointKind is the data point message of a Metric's field.
var pointKind = map[protowire.Number]msgKind{5: kNumberPoint, 7: kNumberPoint, 9: kHistogramPoint, 10: kExpPoint, 11: kSummaryPoint}

// maxDepth bounds the descent (AnyValue may nest without end).
const maxDepth = 16

// decodedSize estimates the memory pdata takes to decode a protobuf
// request, from its wire structure alone: it counts the messages without
// decoding them. A body that does not parse gets the estimate of what
// parsed; pdata then refuses it.
func decodedSize(body []byte) int64 {
	return countMessages(body, kRequest, 0) + int64(len(body))*wireBytes
}

// weight is the memory of one decoded message of kind.
func weight(kind msgKind) int64 {
	switch kind {
	case kExemplar:
		return decodedExemplarBytes
	case kNumberPoint, kHistogramPoint, kExpPoint, kSummaryPoint:
		return pointBytes
	}
	return messageBytes
}

func countMessages(b []byte, kind msgKind, depth int) int64 {
	n := weight(kind)
	if depth >= maxDepth {
		return n
	}
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		if typ != protowire.BytesType {
			l = protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return n
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		sub, ok := subMessages[kind][num]
		if !ok {
			continue
		}
		if kind == kMetric {
			if pk, isPoints := pointKind[num]; isPoints {
				n += countPointMessages(v, pk, depth+1)
				continue
			}
		}
		n += countMessages(v, sub, depth+1)
	}
	return n
}

// countPointMessages counts a Gauge, Sum, … message and its data points.
func countPointMessages(b []byte, point msgKind, depth int) int64 {
	n := int64(messageBytes)
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		if typ != protowire.BytesType || num != 1 {
			l = protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return n
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		n += countMessages(v, point, depth+1)
	}
	return n
}

// decodedSizeJSON estimates the memory pdata takes to decode a JSON
// request: every message is an object, so each "{" (those in strings
// too: an over-estimate only) counts as the largest message.
func decodedSizeJSON(body []byte) int64 {
	return int64(bytes.Count(body, []byte("{")))*decodedExemplarBytes + int64(len(body))*wireBytes
}
