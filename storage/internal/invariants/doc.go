// Package invariants reports broken internal assumptions. Built with
// `-tags invariants` (as `make test` does), Failf panics so that tests stop
// at the bug; in a production build it returns an error so that the server
// reports the failure instead of crashing. Bad input is never an invariant
// violation: it gets an ordinary error.
//
//	if n < 0 {
//		return invariants.Failf("chunk %d has %d samples", id, n)
//	}
package invariants
