package codec

import (
	"os"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

// annexB splits an Annex-B file into NAL units.
func annexB(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var au h264.AnnexB
	require.NoError(t, au.Unmarshal(b))
	return au
}

func firstOfType(nalus [][]byte, typ func([]byte) bool) []byte {
	for _, n := range nalus {
		if typ(n) {
			return n
		}
	}
	return nil
}

func h264Is(t uint8) func([]byte) bool { return func(n []byte) bool { return n[0]&0x1f == t } }
func h265Is(t int) func([]byte) bool   { return func(n []byte) bool { return H265NALType(n) == t } }

func TestAVCConfig(t *testing.T) {
	nalus := annexB(t, "testdata/high_bf.h264")
	sps := firstOfType(nalus, h264Is(H264NALSPS))
	pps := firstOfType(nalus, h264Is(H264NALPPS))
	require.NotNil(t, sps)
	good := NewAVCConfig([][]byte{sps}, [][]byte{pps}).Marshal()

	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{name: "ffmpeg high", in: good},
		{name: "empty", in: nil, err: ErrShort},
		{name: "version 0", in: append([]byte{0}, good[1:]...), err: ErrVersion},
		{name: "length size 3", in: append(append([]byte{}, good[:4]...), append([]byte{0xfe}, good[5:]...)...), err: ErrVersion},
		{name: "truncated SPS", in: good[:10], err: ErrShort},
		{name: "no PPS count", in: good[:8+len(sps)-2], err: ErrShort},
		{name: "no SPS", in: []byte{1, 66, 0, 30, 0xff, 0xe0, 0}, err: ErrNoParameterSets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseAVCConfig(c.in)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 4, cfg.NALLengthSize)
			require.Equal(t, [][]byte{sps}, cfg.SPS)
			require.Equal(t, [][]byte{pps}, cfg.PPS)
			require.Equal(t, uint8(100), cfg.Profile)
		})
	}

	info, err := ParseAVCSPS(sps)
	require.NoError(t, err)
	require.Equal(t, 320, info.Width)
	require.Equal(t, 240, info.Height)
	require.Equal(t, "High", info.Profile)
	require.Equal(t, "64", info.ProfileLevelID[:2])
	require.Len(t, info.ProfileLevelID, 6)
	_, err = ParseAVCSPS(pps)
	require.ErrorIs(t, err, ErrSPS)
}

func TestAVCSliceType(t *testing.T) {
	nalus := annexB(t, "testdata/high_bf.h264")
	counts := map[int]int{}
	disposable := 0
	for _, n := range nalus {
		st, ok := AVCSliceType(n)
		if !ok {
			continue
		}
		if n[0]&0x1f == H264NALIDR {
			require.Equal(t, SliceI, st)
		}
		counts[st]++
		if AVCDisposableB(n) {
			disposable++
		}
	}
	t.Logf("slice types %v, disposable B %d", counts, disposable)
	require.Positive(t, counts[SliceB])
	require.Positive(t, counts[SliceP])
	require.Positive(t, counts[SliceI])

	cases := []struct {
		name string
		in   []byte
		ok   bool
		want int
	}{
		{name: "not a slice", in: []byte{0x67, 0x42}, ok: false},
		{name: "empty", in: nil},
		{name: "P slice ue(0) ue(0)", in: []byte{0x41, 0xc0}, ok: true, want: SliceP},
		{name: "B slice ue(0) ue(1)", in: []byte{0x01, 0xa0}, ok: true, want: SliceB},
		{name: "I slice type 7", in: []byte{0x65, 0x88, 0x80}, ok: true, want: SliceI},
		{name: "emulation prevention", in: []byte{0x41, 0x00, 0x00, 0x03, 0x01, 0xff}, ok: false},
		{name: "truncated", in: []byte{0x41, 0x00}, ok: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ok := AVCSliceType(c.in)
			require.Equal(t, c.ok, ok)
			if ok {
				require.Equal(t, c.want, st)
			}
		})
	}
	// nal_ref_idc 0 and slice_type B: disposable; the same with nal_ref_idc 2 is not.
	require.True(t, AVCDisposableB([]byte{0x01, 0xa0}))
	require.False(t, AVCDisposableB([]byte{0x41, 0xa0}))
}

func TestHEVCConfig(t *testing.T) {
	nalus := annexB(t, "testdata/main.h265")
	vps := firstOfType(nalus, h265Is(H265NALVPS))
	sps := firstOfType(nalus, h265Is(H265NALSPS))
	pps := firstOfType(nalus, h265Is(H265NALPPS))
	sei := firstOfType(nalus, h265Is(H265NALPrefixSEI))
	require.NotNil(t, pps)
	in := &HEVCConfig{Profile: 1, Level: 93, NALLengthSize: 4, VPS: [][]byte{vps}, SPS: [][]byte{sps}, PPS: [][]byte{pps}}
	if sei != nil {
		in.Other = [][]byte{sei}
	}
	good := in.Marshal()
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{name: "x265", in: good},
		{name: "short", in: good[:22], err: ErrShort},
		{name: "version 2", in: append([]byte{2}, good[1:]...), err: ErrVersion},
		{name: "truncated array", in: good[:30], err: ErrShort},
		{name: "no arrays", in: append(append([]byte{}, good[:22]...), 0), err: ErrNoParameterSets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseHEVCConfig(c.in)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, in, cfg)
		})
	}
	info, err := ParseHEVCSPS(sps)
	require.NoError(t, err)
	require.Equal(t, 352, info.Width)
	require.Equal(t, 288, info.Height)
	require.Equal(t, "Main", info.Profile)
	irap := 0
	for _, n := range nalus {
		if HEVCIsIRAP(n) {
			irap++
		}
	}
	require.Positive(t, irap)
}

func TestAV1Config(t *testing.T) {
	cases := []struct {
		name  string
		in    []byte
		err   error
		level string
	}{
		{name: "main 4.0 with seq header", in: []byte{0x81, 0x08, 0x0c, 0x00, 0x0a, 0x0b, 0, 0, 0}, level: "4.0"},
		{name: "level 3.1", in: []byte{0x81, 0x05, 0x00, 0x00}, level: "3.1"},
		{name: "short", in: []byte{0x81, 0}, err: ErrShort},
		{name: "bad marker", in: []byte{0x01, 0, 0, 0}, err: ErrVersion},
		{name: "profile 7", in: []byte{0x81, 0xe0, 0, 0}, err: ErrAV1Config},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseAV1Config(c.in)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.level, cfg.LevelName())
			require.Equal(t, c.in[4:], cfg.ConfigOBUs)
			require.Equal(t, "Main", cfg.ProfileName())
		})
	}
}

func TestAudioSpecificConfig(t *testing.T) {
	cases := []struct {
		name     string
		in       []byte
		err      bool
		aot      int
		rate     int
		channels int
		sbr, ps  bool
		ext      int
		profile  string
	}{
		{name: "LC 44.1 stereo", in: []byte{0x12, 0x10}, aot: 2, rate: 44100, channels: 2, profile: "LC"},
		{name: "LC 48 mono", in: []byte{0x11, 0x88}, aot: 2, rate: 48000, channels: 1, profile: "LC"},
		{name: "LC 22.05 mono built", in: BuildAudioSpecificConfig(2, 7, 1), aot: 2, rate: 22050, channels: 1, profile: "LC"},
		{name: "ffmpeg LC with padding", in: []byte{0x12, 0x10, 0x56, 0xe5, 0x00}, aot: 2, rate: 44100, channels: 2, profile: "LC"},
		{name: "implicit SBR", in: []byte{0x13, 0x10, 0x56, 0xe5, 0x98}, aot: 2, rate: 24000, channels: 2, sbr: true, ext: 48000, profile: "HE-AAC"},
		{name: "explicit SBR", in: []byte{0x2b, 0x11, 0x88, 0x00}, aot: 2, rate: 24000, channels: 2, sbr: true, ext: 48000, profile: "HE-AAC"},
		{name: "explicit PS", in: []byte{0xeb, 0x09, 0x88, 0x00}, aot: 2, rate: 24000, channels: 1, sbr: true, ps: true, ext: 48000, profile: "HE-AACv2"},
		{name: "explicit rate", in: []byte{0x17, 0x80, 0x01, 0xf4, 0x10}, aot: 2, rate: 1000, channels: 2, profile: "LC"},
		{name: "short", in: []byte{0x12}, err: true},
		{name: "reserved rate index", in: []byte{0x16, 0x90}, err: true},
		{name: "960 frames", in: []byte{0x12, 0x14}, err: true},
		{name: "escaped AOT truncated", in: []byte{0xf8, 0x00}, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			asc, err := ParseAudioSpecificConfig(c.in)
			if c.err {
				require.ErrorIs(t, err, ErrASC)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.aot, asc.ObjectType)
			require.Equal(t, c.rate, asc.SampleRate)
			require.Equal(t, c.channels, asc.Channels)
			require.Equal(t, c.sbr, asc.SBR)
			require.Equal(t, c.ps, asc.PS)
			require.Equal(t, c.ext, asc.ExtensionRate)
			require.Equal(t, c.profile, asc.Profile())
			require.Equal(t, c.sbr, asc.HE())
		})
	}
}

func TestOpusHead(t *testing.T) {
	h, err := ParseOpusHead(BuildOpusHead(2, 48000))
	require.NoError(t, err)
	require.Equal(t, &OpusHead{Channels: 2, PreSkip: 312, InputRate: 48000}, h)
	_, err = ParseOpusHead([]byte("OpusHead"))
	require.ErrorIs(t, err, ErrOpusHead)
	bad := BuildOpusHead(0, 48000)
	_, err = ParseOpusHead(bad)
	require.ErrorIs(t, err, ErrOpusHead)
	bad = BuildOpusHead(2, 48000)
	bad[8] = 0x10
	_, err = ParseOpusHead(bad)
	require.ErrorIs(t, err, ErrOpusHead)
}
