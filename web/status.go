package web

import (
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"time"
)

// Status is what the Prometheus status endpoints report about the running
// server; cmd/tsdb fills it in. A nil func answers 404 as if the endpoint
// did not exist.
type Status struct {
	// Flags are the flags of `tsdb serve` with their values, as
	// /api/v1/status/flags lists them.
	Flags map[string]string
	// Config returns the config file as last loaded, as YAML with every
	// secret hidden (/api/v1/status/config).
	Config func() string
	// Runtime returns what /api/v1/status/runtimeinfo reports beyond the
	// Go runtime's own figures.
	Runtime func() RuntimeInfo
}

// RuntimeInfo is the body of /api/v1/status/runtimeinfo, in Prometheus'
// field names (tools such as Grafana and promtool read them).
type RuntimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	CorruptionCount     int64     `json:"corruptionCount"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

func statusFlags(st Status) Handler {
	return func(*Request) (any, error) {
		if st.Flags == nil {
			return nil, notFound("flags are not reported")
		}
		return st.Flags, nil
	}
}

func statusConfig(st Status) Handler {
	return func(*Request) (any, error) {
		if st.Config == nil {
			return nil, notFound("the config is not reported")
		}
		return map[string]string{"yaml": st.Config()}, nil
	}
}

func statusRuntime(st Status) Handler {
	return func(*Request) (any, error) {
		if st.Runtime == nil {
			return nil, notFound("runtime information is not reported")
		}
		ri := st.Runtime()
		ri.CWD, _ = os.Getwd()
		ri.GoroutineCount = runtime.NumGoroutine()
		ri.GOMAXPROCS = runtime.GOMAXPROCS(0)
		ri.GOMEMLIMIT = debug.SetMemoryLimit(-1)
		ri.GOGC = os.Getenv("GOGC")
		if ri.GOGC == "" {
			// The target the server set (it tunes it to the live heap).
			s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
			rtmetrics.Read(s)
			ri.GOGC = strconv.FormatUint(s[0].Value.Uint64(), 10)
		}
		ri.GODEBUG = os.Getenv("GODEBUG")
		return ri, nil
	}
}
