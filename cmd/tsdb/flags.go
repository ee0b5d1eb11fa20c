package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseDuration parses a Prometheus-style duration: a sequence of numbers
// with units y, w, d, h, m, s, ms (e.g. 30d, 1w2d, 90m). A plain number
// is seconds.
func parseDuration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	units := []struct {
		suffix string
		d      time.Duration
	}{
		{"ms", time.Millisecond}, {"y", 365 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour},
		{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad duration %q: want e.g. 30d, 12h or 1w2d", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q: %v", s, err)
		}
		rest = rest[i:]
		found := false
		for _, u := range units {
			if strings.HasPrefix(rest, u.suffix) {
				total += time.Duration(n) * u.d
				rest = rest[len(u.suffix):]
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("bad duration %q: unknown unit at %q", s, rest)
		}
	}
	return total, nil
}

// durationFlag is a flag.Value for Prometheus-style durations.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}
