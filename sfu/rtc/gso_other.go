//go:build !linux

package rtc

import "net"

// UDP GSO is Linux only: elsewhere batches go out one datagram at a time.

const gsoControlSpace = 0

func gsoSupported(*net.UDPConn) bool { return false }

func gsoControl(buf []byte, _ int) []byte { return buf }

func gsoRefused(error) bool { return true }
