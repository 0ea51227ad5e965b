//go:build e2e

package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FFmpegArgs describes an ffmpeg RTMP push of generated test media. The zero value pushes testsrc
// 320x240 at 25 fps as H.264 baseline (GOP 50) with a 440 Hz sine as AAC 44.1 kHz stereo, until Stop.
type FFmpegArgs struct {
	Size     string        // video size, default "320x240"
	Rate     int           // frames per second, default 25
	Duration time.Duration // -t; 0 = until Stop
	NoRe     bool          // push as fast as possible instead of real time (-re)
	Profile  string        // x264 profile, default "baseline"
	Preset   string        // x264 preset, default "veryfast" (keeps B-frames, holds real time on 2 cores)
	BFrames  int           // -bf (only for main/high)
	GOP      int           // -g in frames, default 2 s worth
	NoVideo  bool
	NoAudio  bool
	// AudioRate and AudioChannels of the AAC track: default 44100 and 2.
	AudioRate     int
	AudioChannels int
	// ToneHz is the sine frequency, default 440.
	ToneHz int
	// VideoSource replaces testsrc (a lavfi graph such as "testsrc2=size=640x360:rate=30").
	VideoSource string
	// AudioSource replaces the sine (a lavfi graph).
	AudioSource string
	// Extra output arguments placed before "-f flv URL".
	Extra []string
}

func (a FFmpegArgs) args(url string) []string {
	if a.Size == "" {
		a.Size = "320x240"
	}
	if a.Rate == 0 {
		a.Rate = 25
	}
	if a.Profile == "" {
		a.Profile = "baseline"
	}
	if a.Preset == "" {
		a.Preset = "veryfast"
	}
	if a.GOP == 0 {
		a.GOP = 2 * a.Rate
	}
	if a.AudioRate == 0 {
		a.AudioRate = 44100
	}
	if a.AudioChannels == 0 {
		a.AudioChannels = 2
	}
	if a.ToneHz == 0 {
		a.ToneHz = 440
	}
	var args []string
	input := func(src string) {
		if !a.NoRe {
			args = append(args, "-re")
		}
		args = append(args, "-f", "lavfi", "-i", src)
	}
	if !a.NoVideo {
		src := a.VideoSource
		if src == "" {
			src = fmt.Sprintf("testsrc=size=%s:rate=%d", a.Size, a.Rate)
		}
		input(src)
	}
	if !a.NoAudio {
		src := a.AudioSource
		if src == "" {
			src = fmt.Sprintf("sine=frequency=%d:sample_rate=%d", a.ToneHz, a.AudioRate)
		}
		input(src)
	}
	if a.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(a.Duration.Seconds(), 'f', 3, 64))
	}
	if a.NoVideo {
		args = append(args, "-vn")
	} else {
		args = append(args, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", a.Preset, "-profile:v", a.Profile, "-g", strconv.Itoa(a.GOP))
		if a.Profile != "baseline" {
			args = append(args, "-bf", strconv.Itoa(a.BFrames))
		}
	}
	if a.NoAudio {
		args = append(args, "-an")
	} else {
		args = append(args, "-c:a", "aac", "-ar", strconv.Itoa(a.AudioRate), "-ac", strconv.Itoa(a.AudioChannels))
	}
	args = append(args, a.Extra...)
	return append(args, "-f", "flv", url)
}

// Proc is an external tool process started by a test. Cleanup stops it by PID.
type Proc struct {
	Cmd  *exec.Cmd
	PID  int
	Args []string

	stderr ffBuffer
	done   chan struct{}
	err    error
	stop   sync.Once
}

type ffBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *ffBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *ffBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FFmpegPush starts ffmpeg pushing generated media to url (rtmp://...). It fails the test if ffmpeg
// is missing.
func FFmpegPush(t testing.TB, url string, args FFmpegArgs) *Proc {
	t.Helper()
	return FFmpegRun(t, args.args(url)...)
}

// FFmpegRun starts ffmpeg with the given arguments (after -hide_banner -nostdin -loglevel warning).
func FFmpegRun(t testing.TB, args ...string) *Proc {
	t.Helper()
	return startTool(t, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "warning"}, args...))
}

func startTool(t testing.TB, tool string, args []string) *Proc {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is required (scripts/deps.sh): %v", tool, err)
	}
	p := &Proc{Args: args, done: make(chan struct{})}
	p.Cmd = exec.Command(path, args...)
	p.Cmd.Stderr = &p.stderr
	p.Cmd.Stdout = &p.stderr
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", tool, err)
	}
	p.PID = p.Cmd.Process.Pid
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// Stderr is what the process wrote so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Done is closed when the process exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop ends the process (SIGINT, then SIGKILL after 3 s) and returns its exit error. Idempotent.
func (p *Proc) Stop() error {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.Cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	})
	<-p.done
	return p.err
}

// Wait waits up to timeout for the process to exit by itself and returns its exit error; on timeout it
// stops the process and fails the test.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Stop()
		t.Fatalf("%s did not exit within %v; output:\n%s", p.Cmd.Path, timeout, p.Stderr())
		return nil
	}
}

// FFprobe runs ffprobe -v error with args and returns its stdout; any stderr output (a decoding error)
// or failure fails the test.
func FFprobe(t testing.TB, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required (scripts/deps.sh): %v", err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(path, append([]string{"-v", "error"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe %v: %v\n%s", args, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Fatalf("ffprobe %v reported errors:\n%s", args, s)
	}
	return out.String()
}

// FFprobeVideoFrames decodes a raw video elementary stream (format "h264", "hevc") held in data and
// returns each decoded frame's width; decoding errors fail the test.
func FFprobeVideoFrames(t testing.TB, format string, data []byte) []int {
	t.Helper()
	file := t.TempDir() + "/video." + format
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := FFprobe(t, "-f", format, "-select_streams", "v:0", "-show_entries", "frame=width", "-of", "csv=p=0", file)
	var widths []int
	for _, f := range strings.Fields(out) {
		w, err := strconv.Atoi(strings.Trim(f, ","))
		if err == nil {
			widths = append(widths, w)
		}
	}
	return widths
}
