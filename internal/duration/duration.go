package duration

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Syntax is what a duration looks like, for error messages and help text.
const Syntax = "integers with units, largest first: 30d, 2w, 1h30m, 500ms (units y w d h m s ms)"

// Parse parses s in Prometheus's syntax. Its error quotes s and shows the
// syntax, so that someone who wrote Go's 1.5h learns what to write.
func Parse(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w; want %s", err, Syntax)
	}
	return time.Duration(d), nil
}

// String formats d in the syntax Parse reads (90m as 1h30m, 0 as 0s).
// Parts below a millisecond are dropped.
func String(d time.Duration) string { return model.Duration(d).String() }

// Duration is a time.Duration that YAML writes in Prometheus's syntax. An
// empty or null value leaves it zero, which config types read as "the
// default".
type Duration time.Duration

// UnmarshalYAML parses a scalar with Parse. A value that is not a
// duration comes back as an *Error, which stops the decoding.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &Error{Line: n.Line, Column: n.Column, Err: fmt.Errorf("a YAML %s is not a duration; want %s", kindName(n.Kind), Syntax)}
	}
	v, err := Parse(n.Value)
	if err != nil {
		return &Error{Line: n.Line, Column: n.Column, Value: n.Value, Err: err}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as String does, so that it reads back the same.
func (d Duration) MarshalYAML() (any, error) { return String(time.Duration(d)), nil }

// String formats d in Prometheus's syntax.
func (d Duration) String() string { return String(time.Duration(d)) }

// Error is a YAML value that is not a duration. Line and Column (from 1)
// are where the value is, so that a caller holding the whole document can
// name the field.
type Error struct {
	Line, Column int
	Value        string
	Err          error
}

// Error says where the value is and why it is not a duration.
func (e *Error) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the parse error.
func (e *Error) Unwrap() error { return e.Err }

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	}
	return "document"
}
