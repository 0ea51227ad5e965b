package hls

import (
	"fmt"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// PlayKey parses the redirect request GET /{app}/{file}: file is "{stream}.m3u8"; it returns the stream
// key or an error wrapping ErrBadPath.
func PlayKey(app, file string) (string, error) {
	name, ok := strings.CutSuffix(file, ".m3u8")
	if !ok || name == "" {
		return "", fmt.Errorf("%w: %q is not {stream}.m3u8", ErrBadPath, file)
	}
	key := app + "/" + name
	if !sfu.ValidKey(key) {
		return "", fmt.Errorf("%w: invalid stream key %q", ErrBadPath, key)
	}
	return key, nil
}

// MuxerFile parses a muxer request /n/{node}/hls/{app}/{stream}/{file}: it returns the stream key and
// the file name (playlists end in .m3u8, segments and parts in .ts or .mp4), or an error wrapping
// ErrBadPath.
func MuxerFile(app, stream, file string) (key, name string, err error) {
	key = app + "/" + stream
	if !sfu.ValidKey(key) {
		return "", "", fmt.Errorf("%w: invalid stream key %q", ErrBadPath, key)
	}
	if !validFile(file) {
		return "", "", fmt.Errorf("%w: invalid file name %q", ErrBadPath, file)
	}
	return key, file, nil
}

// validFile: [A-Za-z0-9_.-]+ ending in .m3u8, .ts or .mp4, never "..".
func validFile(f string) bool {
	if len(f) == 0 || len(f) > 128 || strings.Contains(f, "..") {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	for _, ext := range []string{".m3u8", ".ts", ".mp4"} {
		if len(f) > len(ext) && strings.HasSuffix(f, ext) {
			return true
		}
	}
	return false
}

func isPlaylist(file string) bool { return strings.HasSuffix(file, ".m3u8") }
