package stats

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// UDPCounters are the host's UDP counters from /proc/net/snmp (every socket of this network
// namespace, so the server's and estuary-bench's on one machine): receive-buffer overflows are
// packets the kernel dropped because a socket's reader was too slow.
type UDPCounters struct {
	InDatagrams  int64 `json:"in_datagrams"`
	InErrors     int64 `json:"in_errors"`
	RcvbufErrors int64 `json:"rcvbuf_errors"`
	SndbufErrors int64 `json:"sndbuf_errors"`
}

// Sub is c - o.
func (c UDPCounters) Sub(o UDPCounters) UDPCounters {
	return UDPCounters{c.InDatagrams - o.InDatagrams, c.InErrors - o.InErrors,
		c.RcvbufErrors - o.RcvbufErrors, c.SndbufErrors - o.SndbufErrors}
}

// ReadUDPCounters reads /proc/net/snmp.
func ReadUDPCounters() (UDPCounters, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return UDPCounters{}, fmt.Errorf("read snmp: %w", err)
	}
	return ParseSNMPUDP(b)
}

// ParseSNMPUDP parses the "Udp:" header and value lines of /proc/net/snmp.
func ParseSNMPUDP(b []byte) (UDPCounters, error) {
	var names [][]byte
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("Udp:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return UDPCounters{}, fmt.Errorf("%w: Udp has %d names and %d values", ErrProcFormat, len(names), len(f))
		}
		var c UDPCounters
		for i, n := range names {
			v, err := strconv.ParseInt(string(f[i]), 10, 64)
			if err != nil {
				return UDPCounters{}, fmt.Errorf("%w: Udp %s = %q", ErrProcFormat, n, f[i])
			}
			switch string(n) {
			case "InDatagrams":
				c.InDatagrams = v
			case "InErrors":
				c.InErrors = v
			case "RcvbufErrors":
				c.RcvbufErrors = v
			case "SndbufErrors":
				c.SndbufErrors = v
			}
		}
		return c, nil
	}
	return UDPCounters{}, fmt.Errorf("%w: no Udp lines", ErrProcFormat)
}
