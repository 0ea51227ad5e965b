// Command estuary-bench is a load generator for live media servers: N WHEP viewers (pion: SRTP
// and RTP parsing, no decoding), N HTTP-FLV readers, N RTMP players and N HLS readers against
// any server's URLs, with a ramp, a warm-up and a measurement window. It prints a line per second
// and writes a JSON report: per kind delivered Mbit/s, units, loss, join failures with their
// reasons and the time-to-first-media distribution; with -pid, the server's CPU and RSS.
//
//	estuary-bench -whep http://127.0.0.1:8080 -stream live/test -n 100 -duration 20s -pid $(pidof estuary) -json out.json
//	estuary-bench -whep 'http://127.0.0.1:8889/{stream}/whep' -n 100   # MediaMTX
//	estuary-bench -flv http://127.0.0.1:8080 -rtmp rtmp://127.0.0.1:1935 -hls http://127.0.0.1:8080 -probe
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "estuary-bench:", err)
		return 2
	}
	out := stdout
	if cfg.jsonPath == "-" {
		out = stderr
	}
	b, err := newBench(cfg, out, isTerminal(out))
	if err != nil {
		fmt.Fprintln(stderr, "estuary-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := b.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "estuary-bench:", err)
		return 1
	}
	printSummary(out, rep, cfg.probe)
	if cfg.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintln(stderr, "estuary-bench: report:", err)
			return 1
		}
		data = append(data, '\n')
		if cfg.jsonPath == "-" {
			_, err = stdout.Write(data)
		} else {
			err = os.WriteFile(cfg.jsonPath, data, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "estuary-bench: report:", err)
			return 1
		}
	}
	return 0
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printSummary prints a few lines per kind.
func printSummary(w io.Writer, r *Report, probe bool) {
	names := make([]string, 0, len(r.Kinds))
	for n := range r.Kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := r.Kinds[n]
		if probe {
			status := "plays"
			if k.Joined == 0 {
				status = "does not play"
			}
			fmt.Fprintf(w, "%-4s %s: %s (first media %.0f ms)", n, k.URL, status, k.TTFM.Max)
			for why := range k.FailureReasons {
				fmt.Fprintf(w, " [%s]", why)
			}
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "%-4s %d/%d joined, %d failed, %d disconnected: %.1f Mbit/s (%.3f per reader), %.0f units/s, loss %.4f%%, ttfm p50 %.0f ms p99 %.0f ms max %.0f ms\n",
			n, k.Joined, k.Readers, k.JoinFailures, k.Disconnects, k.Mbps, k.MbpsPerReader, k.UnitsPerSecond,
			100*k.LossRatio, k.TTFM.P50, k.TTFM.P99, k.TTFM.Max)
		for why, c := range k.FailureReasons {
			fmt.Fprintf(w, "     join failure x%d: %s\n", c, why)
		}
		for why, c := range k.DisconnectWhy {
			fmt.Fprintf(w, "     disconnect x%d: %s\n", c, why)
		}
	}
	if s := r.Server; s != nil {
		if s.Error != "" {
			fmt.Fprintf(w, "server pid %d: %s\n", s.PID, s.Error)
		} else {
			fmt.Fprintf(w, "server pid %d: %.2f cores, %.0f Mbit/s per core, %.2f µs CPU per unit, RSS %+d MB (%.0f KB per reader)\n",
				s.PID, s.Cores, s.MbpsPerCore, s.CPUusPerUnit, s.RSSDelta>>20, s.RSSPerReader/1024)
		}
	}
	if u := r.HostUDP; u != nil && (u.RcvbufErrors > 0 || u.SndbufErrors > 0) {
		fmt.Fprintf(w, "host UDP: %d datagrams dropped at full receive buffers, %d at full send buffers (every process)\n",
			u.RcvbufErrors, u.SndbufErrors)
	}
	if !probe {
		fmt.Fprintf(w, "total %.1f Mbit/s over %.1f s; estuary-bench used %.2f cores\n", r.TotalMbps, r.WindowSeconds, r.Client.Cores)
	}
}
