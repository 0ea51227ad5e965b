package m3u8

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var parseCases = []struct {
	name    string
	in      string
	want    Playlist
	wantErr error
}{
	{name: "media", in: "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n" +
		"#EXTINF:2.000,\nseg41.ts\n#EXTINF:1.960,\nseg42.ts\n",
		want: Playlist{TargetDuration: 2, MediaSequence: 41, Segments: []Segment{
			{URI: "seg41.ts", Seq: 41, Duration: 2}, {URI: "seg42.ts", Seq: 42, Duration: 1.96}}}},
	{name: "master", in: "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.42c01e,mp4a.40.2\"\nstream.m3u8\n",
		want: Playlist{Master: true, Variants: []string{"stream.m3u8"}}},
	{name: "fmp4 with map and parts", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n" +
		"#EXT-X-PART:DURATION=0.2,URI=\"part1.mp4\"\n#EXTINF:2,\nseg0.mp4\n#EXT-X-ENDLIST\n",
		want: Playlist{TargetDuration: 2, Map: "init.mp4", Ended: true, Segments: []Segment{{URI: "seg0.mp4", Duration: 2}}}},
	{name: "crlf", in: "#EXTM3U\r\n#EXTINF:1,\r\na.ts\r\n", want: Playlist{Segments: []Segment{{URI: "a.ts", Duration: 1}}}},
	{name: "not a playlist", in: "<html>", wantErr: ErrNotPlaylist},
	{name: "empty", in: "", wantErr: ErrNotPlaylist},
	{name: "bad extinf", in: "#EXTM3U\n#EXTINF:abc,\na.ts\n", wantErr: ErrBadTag},
	{name: "bad map", in: "#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n", wantErr: ErrBadTag},
	{name: "sequence after segments", in: "#EXTM3U\n#EXTINF:1,\na.ts\n#EXT-X-MEDIA-SEQUENCE:3\n", wantErr: ErrBadTag},
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.in))
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, p)
		})
	}
}

// format writes a media playlist back (the fuzz round trip).
func format(p Playlist) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%g\n#EXT-X-MEDIA-SEQUENCE:%d\n", p.TargetDuration, p.MediaSequence)
	for _, s := range p.Segments {
		fmt.Fprintf(&b, "#EXTINF:%g,\n%s\n", s.Duration, s.URI)
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Parse(in)
		if err != nil {
			return
		}
		for i, s := range p.Segments {
			require.Equal(t, p.MediaSequence+uint64(i), s.Seq)
		}
		if p.Master || p.Map != "" {
			return
		}
		for _, s := range p.Segments {
			if strings.HasPrefix(s.URI, "#") || s.URI != strings.TrimSpace(s.URI) || strings.ContainsAny(s.URI, "\r\n") {
				return
			}
		}
		again, err := Parse([]byte(format(p)))
		require.NoError(t, err)
		p.Ended = false
		require.Equal(t, p.Segments, again.Segments)
		require.Equal(t, p.MediaSequence, again.MediaSequence)
	})
}
