//go:build invariants

package invariants

import "fmt"

// Enabled reports whether the build checks invariants.
const Enabled = true

// Failf panics with a "BUG:" message: under the invariants tag a broken
// assumption stops the test that found it.
func Failf(format string, args ...any) error {
	panic(fmt.Sprintf("BUG: "+format, args...))
}
