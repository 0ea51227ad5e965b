package rtc

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// UDP GSO (generic segmentation offload for UDP, Linux 4.18+): one sendmsg carries several datagrams
// of one size (the last may be shorter); the kernel splits them as late as it can.
const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
)

var gsoControlSpace = syscall.CmsgSpace(2)

// gsoSupported reports whether the kernel knows UDP_SEGMENT on this socket.
func gsoSupported(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := syscall.GetsockoptInt(int(fd), solUDP, udpSegment)
		ok = err == nil
	})
	return ok
}

// gsoControl writes the UDP_SEGMENT control message for segments of seg bytes into buf
// (gsoControlSpace bytes) and returns it.
func gsoControl(buf []byte, seg int) []byte {
	buf = buf[:gsoControlSpace]
	clear(buf)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&buf[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&buf[syscall.CmsgLen(0)])) = uint16(seg)
	return buf
}

// gsoRefused reports a send error that means GSO itself cannot be used here (no checksum offload on
// the route, a segment too large for the path, an old kernel), as opposed to losing this datagram.
func gsoRefused(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EOPNOTSUPP)
}
