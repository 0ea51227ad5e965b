package codec

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

func TestAVCSPSNoReorder(t *testing.T) {
	nalus := annexB(t, "testdata/high_bf.h264")
	sps := firstOfType(nalus, h264Is(H264NALSPS))
	var before h264.SPS
	require.NoError(t, before.Unmarshal(sps))
	require.NotNil(t, before.VUI)
	require.NotNil(t, before.VUI.BitstreamRestriction)
	require.Positive(t, before.VUI.BitstreamRestriction.MaxNumReorderFrames)

	out, changed, err := AVCSPSNoReorder(sps)
	require.NoError(t, err)
	require.True(t, changed)
	var after h264.SPS
	require.NoError(t, after.Unmarshal(out))
	require.Zero(t, after.VUI.BitstreamRestriction.MaxNumReorderFrames)
	// Everything else is the same.
	after.VUI.BitstreamRestriction.MaxNumReorderFrames = before.VUI.BitstreamRestriction.MaxNumReorderFrames
	require.Equal(t, before, after)

	// Idempotent, and an SPS without reordering stays as it is.
	again, changed, err := AVCSPSNoReorder(out)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, out, again)
	_, _, err = AVCSPSNoReorder([]byte{0x68, 1, 2, 3})
	require.ErrorIs(t, err, ErrSPS)

	// ffprobe sees no B-frame delay in the rewritten stream with its B pictures removed.
	var stream []byte
	for _, n := range nalus {
		if st, ok := AVCSliceType(n); ok && st == SliceB {
			continue
		}
		if n[0]&0x1f == H264NALSPS {
			n = out
		}
		stream = append(append(stream, 0, 0, 0, 1), n...)
	}
	path, err := exec.LookPath("ffprobe")
	require.NoError(t, err)
	cmd := exec.Command(path, "-v", "error", "-f", "h264", "-count_frames", "-show_entries", "stream=has_b_frames,nb_read_frames", "-of", "csv=p=0", "-")
	cmd.Stdin = bytes.NewReader(stream)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	require.NoError(t, cmd.Run(), e.String())
	require.Empty(t, e.String())
	t.Logf("ffprobe has_b_frames,frames: %s", bytes.TrimSpace(o.Bytes()))
	require.True(t, bytes.HasPrefix(o.Bytes(), []byte("0,")), "has_b_frames must be 0: %s", o.String())
}

func FuzzAVCSPSNoReorder(f *testing.F) {
	nalus := annexB(f, "testdata/high_bf.h264")
	f.Add(firstOfType(nalus, h264Is(H264NALSPS)))
	f.Add([]byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, changed, err := AVCSPSNoReorder(b)
		if err != nil || !changed {
			return
		}
		// A rewritten SPS parses as one without reordering whenever the input parsed.
		var in h264.SPS
		if in.Unmarshal(b) != nil {
			return
		}
		var s h264.SPS
		require.NoError(t, s.Unmarshal(out))
		require.Zero(t, s.VUI.BitstreamRestriction.MaxNumReorderFrames)
	})
}
