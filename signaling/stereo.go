package signaling

import (
	"strings"
)

// withOpusStereo adds stereo=1;sprop-stereo=1 to the Opus fmtp lines of an SDP (an answer to a viewer
// of a stereo stream: browsers size their Opus decoder from the answer's stereo parameter, and pion
// builds the answer's fmtp from the offer's, which has none). Payload types whose rtpmap is not Opus
// are left alone, and so is a line that already says stereo.
func withOpusStereo(sdp string) string {
	lines := strings.Split(sdp, "\r\n")
	opus := map[string]bool{}
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "a=rtpmap:"); ok {
			pt, codec, found := strings.Cut(rest, " ")
			if found && strings.HasPrefix(strings.ToLower(codec), "opus/") {
				opus[pt] = true
			}
		}
	}
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, "a=fmtp:")
		if !ok {
			continue
		}
		pt, params, _ := strings.Cut(rest, " ")
		if !opus[pt] || strings.Contains(params, "stereo=") {
			continue
		}
		if params == "" {
			lines[i] = "a=fmtp:" + pt + " stereo=1;sprop-stereo=1"
		} else {
			lines[i] = l + ";stereo=1;sprop-stereo=1"
		}
	}
	return strings.Join(lines, "\r\n")
}
