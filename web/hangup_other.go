//go:build !linux

package web

import "syscall"

// canSeeHangup: only Linux's TCP_INFO is read; elsewhere a query whose
// client hung up runs to its end or its timeout.
func canSeeHangup(syscall.RawConn) bool { return false }

func hungUp(syscall.RawConn) bool { return false }
