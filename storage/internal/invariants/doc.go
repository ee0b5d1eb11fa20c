// Package invariants reports broken internal assumptions. Built with
// `-tags invariants` (as `make test` does), Failf panics so that tests stop
// at the bug; in a production build it returns an error so that the server
// reports the failure instead of crashing. Bad input is never an invariant
// violation: it gets an ordinary error.
//
//	if n < 0 {
//		return invariants.Failf("chunk %d has %d samples", id, n)
//	}
//
// Checks that cost something on a hot path go behind the constant Enabled,
// so that the compiler drops them from a production build:
//
//	if invariants.Enabled && t <= c.maxT {
//		_ = invariants.Failf("append at %d after %d", t, c.maxT)
//	}
//
// A CloseChecker, embedded in an object, finds uses after Close; Leaks
// finds objects never closed, with the stack that opened them (storagetest
// checks the DB's queriers when a test ends). Without the tag both are
// empty and their methods do nothing.
package invariants
