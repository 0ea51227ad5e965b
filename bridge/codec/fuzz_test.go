package codec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParseAVCConfig(f *testing.F) {
	nalus := annexB(f, "testdata/high_bf.h264")
	sps := firstOfType(nalus, h264Is(H264NALSPS))
	pps := firstOfType(nalus, h264Is(H264NALPPS))
	f.Add(NewAVCConfig([][]byte{sps}, [][]byte{pps}).Marshal())
	f.Add([]byte{1, 66, 0, 30, 0xff, 0xe0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAVCConfig(b)
		if err != nil {
			return
		}
		// Round trip: what parsed re-encodes to a record that parses the same.
		c2, err := ParseAVCConfig(c.Marshal())
		require.NoError(t, err)
		require.Equal(t, c, c2)
		for _, s := range c.SPS {
			_, _ = ParseAVCSPS(s)
		}
	})
}

func FuzzParseHEVCConfig(f *testing.F) {
	nalus := annexB(f, "testdata/main.h265")
	c := &HEVCConfig{Profile: 1, Level: 93, NALLengthSize: 4,
		VPS: [][]byte{firstOfType(nalus, h265Is(H265NALVPS))},
		SPS: [][]byte{firstOfType(nalus, h265Is(H265NALSPS))},
		PPS: [][]byte{firstOfType(nalus, h265Is(H265NALPPS))}}
	f.Add(c.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseHEVCConfig(b)
		if err != nil {
			return
		}
		for _, s := range c.SPS {
			_, _ = ParseHEVCSPS(s)
		}
	})
}

func FuzzParseAV1Config(f *testing.F) {
	f.Add([]byte{0x81, 0x08, 0x0c, 0x00, 0x0a, 0x0b, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAV1Config(b)
		if err != nil {
			return
		}
		_ = c.LevelName()
		_ = c.ProfileName()
	})
}

func FuzzParseAudioSpecificConfig(f *testing.F) {
	for _, s := range [][]byte{{0x12, 0x10}, {0x13, 0x10, 0x56, 0xe5, 0x98}, {0x2b, 0x11, 0x88, 0x00}, {0x17, 0x80, 0x03, 0xe8, 0x10}, {0xf8, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAudioSpecificConfig(b)
		if err != nil {
			return
		}
		require.Positive(t, c.SampleRate)
		_ = c.Profile()
	})
}

func FuzzSliceHeader(f *testing.F) {
	f.Add([]byte{0x41, 0x00, 0x00, 0x03, 0x01, 0xff})
	f.Add([]byte{0x01, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := AVCSliceType(b)
		if ok {
			require.Less(t, st, 5)
		}
		_ = AVCDisposableB(b)
		_, _ = ParseOpusHead(b)
	})
}
