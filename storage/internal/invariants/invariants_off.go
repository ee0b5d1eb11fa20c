//go:build !invariants

package invariants

import "fmt"

// Enabled reports whether the build checks invariants.
const Enabled = false

// Failf returns an error describing a broken assumption.
func Failf(format string, args ...any) error {
	return fmt.Errorf("BUG: "+format, args...)
}
