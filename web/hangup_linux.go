package web

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpState returns the kernel's state of the TCP socket rc, ok false
// when it cannot be read.
func tcpState(rc syscall.RawConn) (state uint8, ok bool) {
	err := rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			state, ok = info.State, true
		}
	})
	return state, ok && err == nil
}

// canSeeHangup reports whether hungUp can tell on rc.
func canSeeHangup(rc syscall.RawConn) bool {
	_, ok := tcpState(rc)
	return ok
}

// hungUp reports whether the peer of rc has closed or reset it: the
// socket left ESTABLISHED (CLOSE_WAIT after a FIN, CLOSE after a reset).
func hungUp(rc syscall.RawConn) bool {
	s, ok := tcpState(rc)
	return ok && s != unix.BPF_TCP_ESTABLISHED
}
