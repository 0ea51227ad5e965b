package audio

import (
	"errors"
	"testing"
)

// FuzzAACToOpus feeds arbitrary AudioSpecificConfigs and access units to the transcoder: nothing may
// panic, and every failure must be one of the package's errors.
func FuzzAACToOpus(f *testing.F) {
	src := ffmpegAAC(f, 440, 44100, 2, 0.2)
	mono := ffmpegAAC(f, 440, 22050, 1, 0.2)
	for _, tc := range ascCases {
		f.Add(tc.asc, src.aus[2], uint32(0))
	}
	f.Add(src.asc, src.aus[3], uint32(1<<32-100))
	f.Add(mono.asc, mono.aus[3], uint32(5))
	f.Add(mono.asc, src.aus[3], uint32(5)) // stereo unit in a mono stream
	f.Add(src.asc, mono.aus[3], uint32(5)) // and the reverse
	f.Add(src.asc, src.aus[3][:len(src.aus[3])/2], uint32(7))
	f.Add(src.asc, []byte{}, uint32(0))
	f.Add(mono.asc, sbrAU, uint32(0))
	f.Fuzz(func(t *testing.T, asc, au []byte, ts uint32) {
		_, _ = ParseADTSHeader(au)
		_, _ = ParseASC(asc)
		tr, err := NewAACToOpus(asc, Config{})
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewAACToOpus: unexpected error class: %v", err)
			}
			return
		}
		emit := func(frame []byte, _ uint32) {
			if len(frame) == 0 {
				t.Fatal("empty Opus frame emitted")
			}
		}
		check := func(err error) {
			if err != nil && !errors.Is(err, ErrCorruptFrame) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Transcode: unexpected error class: %v", err)
			}
		}
		// The unit alone, then between good units (the decoder must recover), then with a timestamp far away.
		check(tr.Transcode(au, ts, emit))
		good := src.aus[4]
		if tr.Channels() == 1 {
			good = mono.aus[4]
		}
		check(tr.Transcode(good, ts+1024, emit))
		check(tr.Transcode(au, ts+2048, emit))
		check(tr.Transcode(good, ts+3072, emit))
		check(tr.Transcode(au, ts^0x80000000, emit))
	})
}

// FuzzParseASC checks the AudioSpecificConfig and ADTS parsers: no panic, errors of the package's
// classes, and a config that parses re-marshals to one that parses the same.
func FuzzParseASC(f *testing.F) {
	for _, tc := range ascCases {
		f.Add(tc.asc)
	}
	f.Add([]byte{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseADTSHeader(b); err == nil {
			if h.FrameLen < h.HeaderLen || h.Config.SampleRate == 0 {
				t.Fatalf("ADTS header accepted with %+v", h)
			}
		} else if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("ParseADTSHeader: unexpected error class: %v", err)
		}
		c, err := ParseASC(b)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("ParseASC: unexpected error class: %v", err)
			}
			return
		}
		again, err := ParseASC(c.Marshal())
		if err != nil || again != c {
			t.Fatalf("round trip: %+v -> %x -> %+v, %v", c, c.Marshal(), again, err)
		}
	})
}
