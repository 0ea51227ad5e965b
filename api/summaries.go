package api

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux Go supports.
const clockTicks = 100

// cpuReading is one reading of process and system CPU time.
type cpuReading struct {
	at             time.Time
	procTicks      uint64 // utime+stime of this process
	sysTotal, idle uint64 // from /proc/stat "cpu"
	ok             bool
}

// cpuSample keeps the last reading and the percentages since the one before.
type cpuSample struct {
	last       cpuReading
	procPct    float64
	sysPct     float64
	hasPercent bool
}

func (c *cpuSample) update(r cpuReading) {
	if !r.ok {
		return
	}
	if c.last.ok {
		if dt := r.at.Sub(c.last.at).Seconds(); dt > 0 && r.procTicks >= c.last.procTicks {
			c.procPct = float64(r.procTicks-c.last.procTicks) / clockTicks / dt * 100
		}
		if total := r.sysTotal - c.last.sysTotal; r.sysTotal > c.last.sysTotal && r.idle >= c.last.idle {
			c.sysPct = float64(total-(r.idle-c.last.idle)) / float64(total) * 100
		}
		c.hasPercent = true
	}
	c.last = r
}

// readCPU reads /proc/self/stat and /proc/stat; ok is false where they are missing.
func readCPU(now time.Time) cpuReading {
	r := cpuReading{at: now}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return r
	}
	f := procStatFields(stat)
	if len(f) < 15 {
		return r
	}
	ut, _ := strconv.ParseUint(f[13], 10, 64)
	st, _ := strconv.ParseUint(f[14], 10, 64)
	r.procTicks = ut + st
	r.ok = true
	if sys, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(sys, []byte("\n"))
		fs := strings.Fields(string(line))
		if len(fs) > 4 && fs[0] == "cpu" {
			for i, v := range fs[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				r.sysTotal += n
				if i == 3 || i == 4 { // idle, iowait
					r.idle += n
				}
			}
		}
	}
	return r
}

// procStatFields splits /proc/self/stat, whose 2nd field "(comm)" may hold spaces.
func procStatFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	pre := strings.Fields(string(stat[:bytes.IndexByte(stat, '(')]))
	rest := strings.Fields(string(stat[i+1:]))
	return append(append(pre, string(stat[bytes.IndexByte(stat, '('):i+1])), rest...)
}

// rssKB is the process's resident set size in KiB (from /proc/self/statm), 0 if unknown.
func rssKB() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize()) / 1024
}

// memTotalKB reads MemTotal from /proc/meminfo, 0 if unknown.
func memTotalKB() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				n, _ := strconv.ParseUint(fs[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func loadAvg() (l1, l5, l15 float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		l1, _ = strconv.ParseFloat(f[0], 64)
		l5, _ = strconv.ParseFloat(f[1], 64)
		l15, _ = strconv.ParseFloat(f[2], 64)
	}
	return
}

type summarySelf struct {
	Version       string   `json:"version"`
	PID           int      `json:"pid"`
	PPID          int      `json:"ppid"`
	Argv          string   `json:"argv"`
	CWD           string   `json:"cwd"`
	MemKByte      uint64   `json:"mem_kbyte"`
	MemPercent    float64  `json:"mem_percent"`
	CPUPercent    float64  `json:"cpu_percent"`
	SRSUptime     int64    `json:"srs_uptime"` // seconds (SRS's name)
	UptimeSeconds float64  `json:"uptime_seconds"`
	Goroutines    int      `json:"goroutines"`
	GoHeapKByte   uint64   `json:"go_heap_kbyte"`
	GoSysKByte    uint64   `json:"go_sys_kbyte"`
	Args          []string `json:"args"`
}

type summarySystem struct {
	CPUPercent    float64 `json:"cpu_percent"`
	CPUs          int     `json:"cpus"`
	MemRAMKByte   uint64  `json:"mem_ram_kbyte"`
	MemRAMPercent float64 `json:"mem_ram_percent"`
	Load1m        float64 `json:"load_1m"`
	Load5m        float64 `json:"load_5m"`
	Load15m       float64 `json:"load_15m"`
}

type summaryData struct {
	OK      bool          `json:"ok"`
	NowMS   int64         `json:"now_ms"`
	Self    summarySelf   `json:"self"`
	System  summarySystem `json:"system"`
	Streams int           `json:"streams"`
	Clients int           `json:"clients"`
}

type summariesReply struct {
	Code   int         `json:"code"`
	Server string      `json:"server"`
	Data   summaryData `json:"data"`
}

func (a *API) handleSummaries(w http.ResponseWriter, r *http.Request) {
	now := a.now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cwd, _ := os.Getwd()
	a.mu.Lock()
	cpu := a.cpu
	a.mu.Unlock()
	rss, total := rssKB(), memTotalKB()
	l1, l5, l15 := loadAvg()
	d := summaryData{
		OK: true, NowMS: now.UnixMilli(),
		Self: summarySelf{
			Version: a.cfg.Version, PID: os.Getpid(), PPID: os.Getppid(), Argv: strings.Join(os.Args, " "),
			CWD: cwd, MemKByte: rss, CPUPercent: cpu.procPct,
			SRSUptime: int64(now.Sub(a.started).Seconds()), UptimeSeconds: now.Sub(a.started).Seconds(),
			Goroutines: runtime.NumGoroutine(), GoHeapKByte: ms.HeapAlloc / 1024, GoSysKByte: ms.Sys / 1024,
			Args: os.Args,
		},
		System: summarySystem{CPUPercent: cpu.sysPct, CPUs: runtime.NumCPU(), MemRAMKByte: total, Load1m: l1, Load5m: l5, Load15m: l15},
	}
	if total > 0 {
		d.Self.MemPercent = float64(rss) / float64(total) * 100
	}
	if total > 0 {
		if avail := memAvailableKB(); avail > 0 && avail <= total {
			d.System.MemRAMPercent = float64(total-avail) / float64(total) * 100
		}
	}
	for _, s := range a.streams() {
		if s == nil {
			continue
		}
		d.Streams++
		if s.Publisher() != nil {
			d.Clients++
		}
		d.Clients += len(s.Subscribers())
	}
	a.writeJSON(w, http.StatusOK, summariesReply{Server: a.cfg.NodeID, Data: d})
}

// memAvailableKB reads MemAvailable from /proc/meminfo, 0 if unknown.
func memAvailableKB() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				n, _ := strconv.ParseUint(fs[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
