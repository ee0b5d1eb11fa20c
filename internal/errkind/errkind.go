// Package errkind marks an error with a sentinel that says what kind of
// failure it is (not found, invalid, forbidden…) without changing its
// message, so the one place that maps errors to HTTP statuses can
// classify it with errors.Is while the client reads only the reason.
//
//	return errkind.Mark(fmt.Errorf("group %q has %d rules", name, n), ErrInvalidGroup)
package errkind

// Mark returns err marked as kind: errors.Is(result, kind) and
// errors.Is(result, err) both hold; its message is err's. A nil err
// stays nil.
func Mark(err, kind error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: kind}
}

type marked struct{ err, kind error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }
