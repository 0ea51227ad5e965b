package hls

import "time"

// Limits of a continuous timeline: a step back of more than maxBack or forward of more than maxJump
// between two frames of one track is a new timeline (another source), which gohlslib cannot mark
// (no discontinuity tag), so it is rebased to continue right after the last frame.
const (
	maxBack = time.Second
	maxJump = 5 * time.Second
	// rebaseStep is the gap left at a rebase.
	rebaseStep = 20 * time.Millisecond
)

// timeline maps frame timestamps onto the muxer's timeline: starting at 0 at the first frame, DTS
// never going back per track, no jump (see maxJump).
type timeline struct {
	started bool
	base    time.Duration // first DTS
	shift   time.Duration // added by rebases
	last    [2]time.Duration
	has     [2]bool
}

// place returns the output PTS of a frame (ok false: drop it, its DTS goes back).
func (tl *timeline) place(_ string, video bool, dts, pts time.Duration) (time.Duration, bool) {
	if !tl.started {
		tl.started, tl.base = true, dts
	}
	i := 0
	if video {
		i = 1
	}
	d := dts + tl.shift - tl.base
	if tl.has[i] {
		last := tl.last[i]
		switch {
		case d < last-maxBack || d > last+maxJump:
			adj := last + rebaseStep - d
			tl.shift += adj
			d += adj
		case d < last:
			return 0, false
		}
	}
	if d < -startOffset {
		return 0, false
	}
	tl.last[i], tl.has[i] = d, true
	return pts + tl.shift - tl.base, true
}
