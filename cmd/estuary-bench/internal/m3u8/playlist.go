// Package m3u8 parses the parts of HLS playlists (RFC 8216) a load generator needs: a master
// playlist's variant URIs, a media playlist's segments with their media sequence numbers, the
// init section (EXT-X-MAP) and the target duration. Low-latency parts are ignored.
package m3u8

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors of Parse.
var (
	// ErrNotPlaylist: the text does not start with #EXTM3U.
	ErrNotPlaylist = errors.New("m3u8: not a playlist (no #EXTM3U)")
	// ErrBadTag: a tag's value could not be parsed.
	ErrBadTag = errors.New("m3u8: bad tag")
)

// Segment is one media segment.
type Segment struct {
	URI      string
	Seq      uint64  // media sequence number
	Duration float64 // seconds (EXTINF)
}

// Playlist is a parsed master or media playlist.
type Playlist struct {
	Master         bool     // has EXT-X-STREAM-INF
	Variants       []string // master: variant playlist URIs in order
	TargetDuration float64  // seconds
	MediaSequence  uint64
	Map            string // EXT-X-MAP URI ("" when none)
	Segments       []Segment
	Ended          bool // EXT-X-ENDLIST
}

// maxSegments bounds what one playlist may list.
const maxSegments = 100000

// Parse parses a playlist.
func Parse(data []byte) (Playlist, error) {
	var p Playlist
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	var pendingDur float64
	var pendingInf, pendingStream bool
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			first = false
			if !strings.HasPrefix(line, "#EXTM3U") {
				return Playlist{}, ErrNotPlaylist
			}
			continue
		}
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			switch {
			case pendingStream:
				p.Variants = append(p.Variants, line)
				pendingStream = false
			case pendingInf || !p.Master:
				if len(p.Segments) >= maxSegments {
					return Playlist{}, fmt.Errorf("%w: more than %d segments", ErrBadTag, maxSegments)
				}
				p.Segments = append(p.Segments, Segment{URI: line, Seq: p.MediaSequence + uint64(len(p.Segments)), Duration: pendingDur})
				pendingInf, pendingDur = false, 0
			}
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		switch name {
		case "#EXT-X-STREAM-INF":
			p.Master, pendingStream = true, true
		case "#EXT-X-TARGETDURATION":
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || v < 0 || v > 86400 {
				return Playlist{}, fmt.Errorf("%w: %q", ErrBadTag, line)
			}
			p.TargetDuration = v
		case "#EXT-X-MEDIA-SEQUENCE":
			v, err := strconv.ParseUint(value, 10, 63)
			if err != nil || len(p.Segments) > 0 {
				return Playlist{}, fmt.Errorf("%w: %q", ErrBadTag, line)
			}
			p.MediaSequence = v
		case "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			v, err := strconv.ParseFloat(strings.TrimSpace(d), 64)
			if err != nil || v < 0 || v > 86400 {
				return Playlist{}, fmt.Errorf("%w: %q", ErrBadTag, line)
			}
			pendingInf, pendingDur = true, v
		case "#EXT-X-MAP":
			uri, ok := attr(value, "URI")
			if !ok {
				return Playlist{}, fmt.Errorf("%w: %q", ErrBadTag, line)
			}
			p.Map = uri
		case "#EXT-X-ENDLIST":
			p.Ended = true
		}
	}
	if first {
		return Playlist{}, ErrNotPlaylist
	}
	if err := sc.Err(); err != nil {
		return Playlist{}, fmt.Errorf("%w: %w", ErrBadTag, err)
	}
	return p, nil
}

// attr returns attribute name's value from an attribute list (quotes removed).
func attr(list, name string) (string, bool) {
	for list != "" {
		var k string
		k, list, _ = strings.Cut(list, "=")
		k = strings.TrimSpace(k)
		var v string
		if strings.HasPrefix(list, `"`) {
			end := strings.IndexByte(list[1:], '"')
			if end < 0 {
				return "", false
			}
			v = list[1 : 1+end]
			list = strings.TrimPrefix(list[2+end:], ",")
		} else {
			v, list, _ = strings.Cut(list, ",")
		}
		if k == name {
			return v, true
		}
	}
	return "", false
}
