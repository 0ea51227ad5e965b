package packetize

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAACPayload(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    [][]byte
		err     error
	}{
		{name: "one AU", payload: []byte{0, 16, 0, 3 << 3, 1, 2, 3}, want: [][]byte{{1, 2, 3}}},
		{name: "two AUs", payload: []byte{0, 32, 0, 2 << 3, 0, 1 << 3, 9, 8, 7}, want: [][]byte{{9, 8}, {7}}},
		{name: "index bits ignored", payload: []byte{0, 16, 0, 1<<3 | 5, 4}, want: [][]byte{{4}}},
		{name: "padding after AUs", payload: []byte{0, 16, 0, 1 << 3, 4, 0}, want: [][]byte{{4}}},
		{name: "empty", payload: nil, err: ErrAACHeader},
		{name: "zero header length", payload: []byte{0, 0, 1}, err: ErrAACHeader},
		{name: "odd header bits", payload: []byte{0, 15, 0, 8, 1}, err: ErrAACHeader},
		{name: "headers past end", payload: []byte{0, 48, 0, 8}, err: ErrAACHeader},
		{name: "fragment", payload: []byte{0, 16, 0, 10 << 3, 1, 2}, err: ErrAACFragment},
		{name: "truncated second AU", payload: []byte{0, 32, 0, 1 << 3, 0, 5 << 3, 1, 2}, err: ErrAACTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [][]byte
			err := ParseAACPayload(c.payload, func(au []byte) { got = append(got, append([]byte(nil), au...)) })
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestAACFmtp(t *testing.T) {
	asc := []byte{0x12, 0x10}
	f := AACFmtp(asc)
	require.Equal(t, "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210", f)
	cases := []struct {
		name string
		fmtp string
		want []byte
		err  bool
	}{
		{name: "ours", fmtp: f, want: asc},
		{name: "spaces and case", fmtp: " Mode=aac-hbr; CONFIG=1190 ;SizeLength=13", want: []byte{0x11, 0x90}},
		{name: "config only", fmtp: "config=121056e500", want: []byte{0x12, 0x10, 0x56, 0xe5, 0}},
		{name: "no config", fmtp: "mode=AAC-hbr", err: true},
		{name: "bad hex", fmtp: "config=12g0", err: true},
		{name: "short config", fmtp: "config=12", err: true},
		{name: "lbr mode", fmtp: "mode=AAC-lbr;config=1210", err: true},
		{name: "sizelength 6", fmtp: "sizelength=6;config=1210", err: true},
		{name: "empty", fmtp: "", err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAACFmtp(c.fmtp)
			if c.err {
				require.ErrorIs(t, err, ErrAACFmtp)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestAACRoundTrip(t *testing.T) {
	cases := []struct {
		name    string
		sizes   []int
		max     int
		packets int
	}{
		{name: "small frames", sizes: []int{1, 200, 371, 9}, packets: 4},
		{name: "frame at the limit", sizes: []int{1196}, packets: 1},
		{name: "fragmented", sizes: []int{1197, 3000, 20}, packets: 2 + 3 + 1},
		{name: "small mtu", sizes: []int{500}, max: 100, packets: 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var col collector
			p := NewAAC(&col, Config{SSRC: 7, PayloadType: 97, FirstSeq: 65534, MaxPayload: c.max})
			var aus [][]byte
			for i, n := range c.sizes {
				au := bytes.Repeat([]byte{byte(i + 1)}, n)
				au[0] = byte(n)
				aus = append(aus, au)
				require.NoError(t, p.WriteAU(au, uint32(i*1024)))
			}
			require.Len(t, col.pkts, c.packets)
			var d AACDepacketizer
			var got [][]byte
			seq := uint16(65534)
			for _, pkt := range col.pkts {
				require.Equal(t, seq, pkt.SequenceNumber)
				seq++
				require.Equal(t, uint32(7), pkt.SSRC)
				limit := c.max
				if limit == 0 {
					limit = DefaultMaxPayload
				}
				require.LessOrEqual(t, len(pkt.Payload), limit)
				require.NoError(t, d.Push(pkt.Payload, pkt.Marker, func(au []byte) { got = append(got, append([]byte(nil), au...)) }))
			}
			require.Equal(t, aus, got)
		})
	}
}

func TestAACWriteErrors(t *testing.T) {
	p := NewAAC(&discard{}, Config{})
	require.ErrorIs(t, p.WriteAU(nil, 0), ErrEmptyAU)
	require.ErrorIs(t, p.WriteAU(make([]byte, 8192), 0), ErrAUTooLarge)
}

func TestAACWriteAllocs(t *testing.T) {
	p := NewAAC(&discard{}, Config{})
	au := make([]byte, 400)
	allocs := testing.AllocsPerRun(1000, func() { _ = p.WriteAU(au, 0) })
	require.Zero(t, allocs)
}

func FuzzParseAACPayload(f *testing.F) {
	f.Add([]byte{0, 16, 0, 3 << 3, 1, 2, 3})
	f.Add([]byte{0, 32, 0, 2 << 3, 0, 1 << 3, 9, 8, 7})
	f.Add([]byte{0, 16, 0, 10 << 3, 1, 2})
	f.Add([]byte{0, 32, 0, 1 << 3, 0, 5 << 3, 1, 2})
	f.Fuzz(func(t *testing.T, payload []byte) {
		total := 0
		err := ParseAACPayload(payload, func(au []byte) { total += len(au) })
		if err != nil {
			require.Zero(t, total)
		}
		var d AACDepacketizer
		_ = d.Push(payload, true, func([]byte) {})
		_ = d.Push(payload, false, func([]byte) {})
		_, _ = ParseAACFmtp(string(payload))
	})
}

func FuzzAACRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint16(1200))
	f.Add(bytes.Repeat([]byte{5}, 3000), uint16(100))
	f.Fuzz(func(t *testing.T, au []byte, max uint16) {
		if len(au) == 0 || len(au) > aacMaxAU {
			return
		}
		var col collector
		p := NewAAC(&col, Config{MaxPayload: int(max)})
		require.NoError(t, p.WriteAU(au, 0))
		var d AACDepacketizer
		var got []byte
		for _, pkt := range col.pkts {
			require.NoError(t, d.Push(pkt.Payload, pkt.Marker, func(b []byte) { got = append([]byte(nil), b...) }))
		}
		require.Equal(t, au, got)
	})
}
