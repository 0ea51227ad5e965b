package signaling

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// sdpFrag is an application/trickle-ice-sdpfrag body (RFC 8840), as WHIP/WHEP PATCH carries it.
type sdpFrag struct {
	Ufrag      string
	Pwd        string
	Candidates []fragCandidate
	End        bool // a=end-of-candidates seen
}

// fragCandidate is one a=candidate line with the media section it belongs to.
type fragCandidate struct {
	Mid        string
	MLineIndex int    // index of the m= line it follows (0 if none)
	Candidate  string // "candidate:..." (without "a=")
}

// maxFragLines bounds a fragment's lines.
const maxFragLines = 256

// parseSDPFrag parses a trickle-ice-sdpfrag. It accepts the session-level ice-ufrag/ice-pwd/
// ice-options/group lines, m=, c=, a=mid, a=candidate and a=end-of-candidates; other a= lines are
// ignored; anything that is not "x=value" is an error.
func parseSDPFrag(body string) (sdpFrag, error) {
	var f sdpFrag
	if strings.TrimSpace(body) == "" {
		return f, fmt.Errorf("%w: empty body", ErrBadFragment)
	}
	mline, mid := -1, ""
	n := 0
	for line := range strings.SplitSeq(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		n++
		if n > maxFragLines {
			return sdpFrag{}, fmt.Errorf("%w: more than %d lines", ErrBadFragment, maxFragLines)
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return sdpFrag{}, fmt.Errorf("%w: line %d is not an SDP line", ErrBadFragment, n)
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			mline++
			mid = ""
		case 'a':
			key, v, _ := strings.Cut(val, ":")
			switch key {
			case "ice-ufrag":
				if !validICEChars(v, 4, 256) {
					return sdpFrag{}, fmt.Errorf("%w: bad ice-ufrag", ErrBadFragment)
				}
				f.Ufrag = v
			case "ice-pwd":
				if !validICEChars(v, 22, 256) {
					return sdpFrag{}, fmt.Errorf("%w: bad ice-pwd", ErrBadFragment)
				}
				f.Pwd = v
			case "mid":
				mid = v
			case "candidate":
				if err := checkCandidate(v); err != nil {
					return sdpFrag{}, fmt.Errorf("%w: line %d: %w", ErrBadFragment, n, err)
				}
				f.Candidates = append(f.Candidates, fragCandidate{Mid: mid, MLineIndex: max(mline, 0), Candidate: "candidate:" + v})
			case "end-of-candidates":
				f.End = true
			}
		}
	}
	if n == 0 {
		return sdpFrag{}, fmt.Errorf("%w: no lines", ErrBadFragment)
	}
	if (f.Ufrag == "") != (f.Pwd == "") {
		return sdpFrag{}, fmt.Errorf("%w: ice-ufrag and ice-pwd go together", ErrBadFragment)
	}

	return f, nil
}

// validICEChars: RFC 8839 ice-char = ALPHA / DIGIT / "+" / "/", with a length range.
func validICEChars(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}

	return true
}

// checkCandidate checks the shape of a candidate attribute value (after "candidate:"):
// foundation component transport priority address port "typ" type ...
func checkCandidate(v string) error {
	fields := strings.Fields(v)
	if len(fields) < 8 || len(v) > 1024 {
		return fmt.Errorf("candidate has %d fields", len(fields))
	}
	if c, err := strconv.ParseUint(fields[1], 10, 16); err != nil || c == 0 {
		return fmt.Errorf("bad candidate component %q", fields[1])
	}
	switch strings.ToLower(fields[2]) {
	case "udp", "tcp":
	default:
		return fmt.Errorf("bad candidate transport %q", fields[2])
	}
	if _, err := strconv.ParseUint(fields[3], 10, 32); err != nil {
		return fmt.Errorf("bad candidate priority %q", fields[3])
	}
	if p, err := strconv.ParseUint(fields[5], 10, 16); err != nil || p == 0 {
		return fmt.Errorf("bad candidate port %q", fields[5])
	}
	if fields[6] != "typ" {
		return fmt.Errorf("candidate without typ")
	}

	return nil
}

// marshal writes the fragment back (used by the ICE-restart answer and by the fuzz round trip).
func (f sdpFrag) marshal() string {
	var b strings.Builder
	if f.Ufrag != "" {
		b.WriteString("a=ice-ufrag:" + f.Ufrag + "\r\n")
		b.WriteString("a=ice-pwd:" + f.Pwd + "\r\n")
	}
	mline := -1
	for _, c := range f.Candidates {
		for mline < c.MLineIndex {
			mline++
			b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n")
			if c.Mid != "" {
				b.WriteString("a=mid:" + c.Mid + "\r\n")
			}
		}
		b.WriteString("a=" + c.Candidate + "\r\n")
	}
	if f.End {
		b.WriteString("a=end-of-candidates\r\n")
	}

	return b.String()
}

// localFragment builds the trickle-ice-sdpfrag answering an ICE restart from our new local
// description: its ICE credentials and, under the first media section, its candidates.
func localFragment(localSDP string) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(localSDP); err != nil {
		return "", err
	}
	ufrag, _ := sd.Attribute("ice-ufrag")
	pwd, _ := sd.Attribute("ice-pwd")
	var b strings.Builder
	if len(sd.MediaDescriptions) > 0 {
		md := sd.MediaDescriptions[0]
		if v, ok := md.Attribute("ice-ufrag"); ok {
			ufrag = v
		}
		if v, ok := md.Attribute("ice-pwd"); ok {
			pwd = v
		}
		b.WriteString("a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n")
		b.WriteString("m=" + md.MediaName.String() + "\r\n")
		if mid, ok := md.Attribute("mid"); ok {
			b.WriteString("a=mid:" + mid + "\r\n")
		}
		for _, a := range md.Attributes {
			if a.Key == "candidate" {
				b.WriteString("a=candidate:" + a.Value + "\r\n")
			}
		}
		b.WriteString("a=end-of-candidates\r\n")
	}

	return b.String(), nil
}

// restartOffer rewrites a remote offer with new ICE credentials (and without its candidates), the
// offer an ICE restart by PATCH amounts to.
func restartOffer(remoteSDP, ufrag, pwd string) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(remoteSDP); err != nil {
		return "", err
	}
	rewrite := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				a.Value = ufrag
			case "ice-pwd":
				a.Value = pwd
			case "candidate", "end-of-candidates":
				continue
			}
			out = append(out, a)
		}

		return out
	}
	sd.Attributes = rewrite(sd.Attributes)
	for _, md := range sd.MediaDescriptions {
		md.Attributes = rewrite(md.Attributes)
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", err
	}

	return string(out), nil
}
