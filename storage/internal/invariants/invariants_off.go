//go:build !invariants

package invariants

import "fmt"

// Enabled reports whether the build checks invariants.
const Enabled = false

// Failf returns an error describing a broken assumption.
func Failf(format string, args ...any) error {
	return fmt.Errorf("BUG: "+format, args...)
}

// CloseChecker, embedded in an object, finds uses after Close; without
// the invariants tag it is empty and does nothing.
type CloseChecker struct{}

// Close records that the object was closed.
func (*CloseChecker) Close() {}

// AssertOpen reports a use after Close.
func (*CloseChecker) AssertOpen(what string) {}

// Leaks tracks objects opened and not yet closed; without the invariants
// tag it is empty and does nothing.
type Leaks struct{}

// Open records that x was opened.
func (*Leaks) Open(x any) {}

// Close records that x was closed.
func (*Leaks) Close(x any) {}

// Check returns an error naming every object still open.
func (*Leaks) Check() error { return nil }
