package query

import (
	"github.com/VictoriaMetrics/metricsql"
)

// scalarFuncs return scalars; every other function returns an instant
// vector.
var scalarFuncs = map[string]bool{"time": true, "pi": true, "scalar": true, "start": true, "end": true, "step": true}

// mustType is the static type of an expression.
func mustType(e metricsql.Expr) ValueType {
	switch e := e.(type) {
	case *metricsql.NumberExpr, *metricsql.DurationExpr:
		return ValueScalar
	case *metricsql.StringExpr:
		return ValueString
	case *metricsql.MetricExpr:
		return ValueVector
	case *metricsql.RollupExpr:
		if e.Window != nil || e.ForSubquery() {
			return ValueMatrix
		}
		return mustType(e.Expr)
	case *metricsql.FuncExpr:
		if scalarFuncs[e.Name] {
			return ValueScalar
		}
		return ValueVector
	case *metricsql.AggrFuncExpr:
		return ValueVector
	case *metricsql.BinaryOpExpr:
		if mustType(e.Left) == ValueScalar && mustType(e.Right) == ValueScalar {
			return ValueScalar
		}
		return ValueVector
	}
	return ValueVector
}

// checkTypes checks argument types where PromQL is stricter than MetricsQL
// and returns the expression's type. In a MetricsQL-only query (vm) the
// rollups VictoriaMetrics's way take any argument, as there.
func checkTypes(e metricsql.Expr, vm bool) (ValueType, error) {
	var err error
	walk(e, func(x metricsql.Expr) {
		if err != nil {
			return
		}
		switch x := x.(type) {
		case *metricsql.FuncExpr:
			if vm && vmRollupOfQuery(x.Name) {
				return
			}
			if def, ok := rangeFuncs[x.Name]; ok && def.matrixArg < len(x.Args) {
				if t := mustType(x.Args[def.matrixArg]); t != ValueMatrix {
					err = badData("expected type range vector in call to function %q, got %s", x.Name, typeName(t))
				}
			}
			if x.Name == "absent_over_time" && len(x.Args) == 1 && mustType(x.Args[0]) != ValueMatrix {
				err = badData("expected type range vector in call to function %q, got %s", x.Name, typeName(mustType(x.Args[0])))
			}
		case *metricsql.RollupExpr:
			if x.Window != nil || x.ForSubquery() {
				if _, isSel := x.Expr.(*metricsql.MetricExpr); !isSel && !x.ForSubquery() {
					err = badData("ranges only allowed for vector selectors")
				}
			}
		}
	})
	if err != nil {
		return "", err
	}
	return mustType(e), nil
}

// walk calls f on e and every sub-expression.
func walk(e metricsql.Expr, f func(metricsql.Expr)) {
	f(e)
	switch e := e.(type) {
	case *metricsql.RollupExpr:
		walk(e.Expr, f)
		if e.At != nil {
			walk(e.At, f)
		}
	case *metricsql.FuncExpr:
		for _, a := range e.Args {
			walk(a, f)
		}
	case *metricsql.AggrFuncExpr:
		for _, a := range e.Args {
			walk(a, f)
		}
	case *metricsql.BinaryOpExpr:
		walk(e.Left, f)
		walk(e.Right, f)
	}
}
