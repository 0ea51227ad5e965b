//go:build unix

package flv

import (
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether the client of c closed or reset its connection, without blocking: it reads
// (and drops: nothing else reads a viewer's connection) whatever the client sent, until the socket
// would block (still there), EOF or an error (gone). Connections that are not sockets (TLS, tests) are
// never reported gone.
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	var b [512]byte
	err = raw.Read(func(fd uintptr) bool {
		for range 64 { // at most 32 KiB per probe
			n, rerr := syscall.Read(int(fd), b[:])
			switch {
			case rerr == nil && n > 0:
				continue
			case rerr == nil:
				gone = true // EOF
			case errors.Is(rerr, syscall.EINTR):
				continue
			case errors.Is(rerr, syscall.EAGAIN):
			default:
				gone = true
			}
			break
		}
		return true
	})
	return gone || err != nil
}
