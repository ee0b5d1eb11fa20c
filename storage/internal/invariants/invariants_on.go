//go:build invariants

package invariants

import (
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Enabled reports whether the build checks invariants.
const Enabled = true

// Failf panics with a "BUG:" message: under the invariants tag a broken
// assumption stops the test that found it.
func Failf(format string, args ...any) error {
	panic(fmt.Sprintf("BUG: "+format, args...))
}

// CloseChecker, embedded in an object, finds uses after Close, as
// Pebble's does. Closing twice is allowed.
type CloseChecker struct{ closed atomic.Bool }

// Close records that the object was closed.
func (c *CloseChecker) Close() { c.closed.Store(true) }

// AssertOpen fails (panics) when the object was closed.
func (c *CloseChecker) AssertOpen(what string) {
	if c.closed.Load() {
		_ = Failf("%s used after Close", what)
	}
}

// Leaks tracks objects (by pointer) opened and not yet closed, with the
// stack that opened each. The zero value is ready; it is safe for
// concurrent use.
type Leaks struct {
	mu   sync.Mutex
	open map[any]string
}

// Open records that x was opened.
func (l *Leaks) Open(x any) {
	stack := string(debug.Stack())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[any]string{}
	}
	l.open[x] = stack
}

// Close records that x was closed.
func (l *Leaks) Close(x any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.open, x)
}

// Check returns an error naming every object still open, with the stack
// that opened it.
func (l *Leaks) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.open) == 0 {
		return nil
	}
	var leaks []string
	for x, stack := range l.open {
		leaks = append(leaks, fmt.Sprintf("%T opened at:\n%s", x, stack))
	}
	sort.Strings(leaks)
	return fmt.Errorf("%d not closed:\n%s", len(leaks), strings.Join(leaks, "\n"))
}
