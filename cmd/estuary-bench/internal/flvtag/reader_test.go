package flvtag

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

type tagSpec struct {
	typ  uint8
	ts   uint32
	body []byte
}

// build makes an FLV stream: header (audio+video flags), then each tag with its PreviousTagSize.
func build(tags ...tagSpec) []byte {
	var b bytes.Buffer
	b.Write([]byte{'F', 'L', 'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0})
	for _, t := range tags {
		n := len(t.body)
		b.Write([]byte{t.typ, byte(n >> 16), byte(n >> 8), byte(n),
			byte(t.ts >> 16), byte(t.ts >> 8), byte(t.ts), byte(t.ts >> 24), 0, 0, 0})
		b.Write(t.body)
		p := uint32(n + HeaderSize)
		b.Write([]byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)})
	}
	return b.Bytes()
}

type got struct {
	typ       uint8
	ts, size  uint32
	key, seqh bool
}

var readerCases = []struct {
	name    string
	in      []byte
	want    []got
	wantErr error
}{
	{name: "header only", in: build()},
	{name: "avc stream", in: build(
		tagSpec{TypeScript, 0, []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}},
		tagSpec{TypeVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64}},
		tagSpec{TypeAudio, 0, []byte{0xaf, 0, 0x12, 0x10}},
		tagSpec{TypeVideo, 0, []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 1, 2, 3, 4}},
		tagSpec{TypeAudio, 23, []byte{0xaf, 1, 0x21, 0x22}},
		tagSpec{TypeVideo, 40, []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 9}},
		tagSpec{TypeVideo, 0x01000010, []byte{0x27, 1, 0, 0, 0}},
	), want: []got{
		{typ: TypeScript, size: 13},
		{typ: TypeVideo, size: 7, seqh: true},
		{typ: TypeAudio, size: 4, seqh: true},
		{typ: TypeVideo, size: 14, key: true},
		{typ: TypeAudio, ts: 23, size: 4},
		{typ: TypeVideo, ts: 40, size: 11},
		{typ: TypeVideo, ts: 0x01000010, size: 5},
	}},
	{name: "enhanced hevc", in: build(
		tagSpec{TypeVideo, 0, []byte{0x90, 'h', 'v', 'c', '1', 1}},
		tagSpec{TypeVideo, 0, []byte{0x91, 'h', 'v', 'c', '1', 9, 9}},
		tagSpec{TypeVideo, 33, []byte{0xa1, 'h', 'v', 'c', '1', 9}},
	), want: []got{
		{typ: TypeVideo, size: 6, seqh: true},
		{typ: TypeVideo, size: 7, key: true},
		{typ: TypeVideo, ts: 33, size: 6},
	}},
	{name: "empty body", in: build(tagSpec{TypeAudio, 5, nil}), want: []got{{typ: TypeAudio, ts: 5}}},
	{name: "not flv", in: []byte("GIF89a and more bytes"), wantErr: ErrNotFLV},
	{name: "bad data offset", in: []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 3, 0, 0, 0, 0}, wantErr: ErrBadHeader},
	{name: "short header", in: []byte{'F', 'L', 'V', 1}, wantErr: io.ErrUnexpectedEOF},
	{name: "truncated body", in: build(tagSpec{TypeVideo, 0, []byte{0x17, 1, 2, 3, 4, 5, 6}})[:20],
		wantErr: io.ErrUnexpectedEOF},
	{name: "wrong previous tag size", in: func() []byte {
		b := build(tagSpec{TypeAudio, 0, []byte{0xaf, 1}})
		b[len(b)-1]++
		return b
	}(), wantErr: ErrBadTag},
	{name: "reserved bits", in: func() []byte {
		b := build(tagSpec{TypeAudio, 0, []byte{0xaf, 1}})
		b[13] |= 0x80
		return b
	}(), wantErr: ErrBadTag},
}

func readAll(in []byte) ([]got, int64, error) {
	r := NewReader(bytes.NewReader(in), 0)
	var out []got
	var t Tag
	for {
		err := r.Next(&t)
		if errors.Is(err, io.EOF) {
			return out, r.Bytes(), nil
		}
		if err != nil {
			return out, r.Bytes(), err
		}
		out = append(out, got{typ: t.Type, ts: t.Timestamp, size: t.DataSize, key: t.Keyframe(), seqh: t.SequenceHeader()})
	}
}

func TestReader(t *testing.T) {
	for _, c := range readerCases {
		t.Run(c.name, func(t *testing.T) {
			tags, n, err := readAll(c.in)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, tags)
			require.Equal(t, int64(len(c.in)), n, "every byte accounted for")
		})
	}
}

func TestReaderPrefix(t *testing.T) {
	r := NewReader(bytes.NewReader(build(tagSpec{TypeVideo, 0, []byte{0x17, 1, 2, 3, 4, 5, 6, 7}})), 0)
	var tag Tag
	require.NoError(t, r.Next(&tag))
	require.Equal(t, PrefixSize, tag.PrefixLen)
	require.Equal(t, [PrefixSize]byte{0x17, 1, 2, 3, 4}, tag.Prefix)
	require.True(t, r.HasAudio)
	require.True(t, r.HasVideo)
}

func FuzzReader(f *testing.F) {
	for _, c := range readerCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 0)
		var tag Tag
		var sum int64
		for {
			err := r.Next(&tag)
			if err != nil {
				require.LessOrEqual(t, r.Bytes(), int64(len(in)))
				if errors.Is(err, io.EOF) {
					require.Equal(t, int64(len(in)), r.Bytes(), "clean EOF only at the end")
				}
				return
			}
			sum += int64(tag.DataSize) + HeaderSize + 4
			require.LessOrEqual(t, tag.PrefixLen, PrefixSize)
			require.Equal(t, int(min(tag.DataSize, PrefixSize)), tag.PrefixLen)
			require.False(t, tag.Keyframe() && tag.SequenceHeader())
			require.LessOrEqual(t, sum, r.Bytes())
			// Round trip: the tag rebuilt from its header must say the same.
			if int(tag.DataSize) == tag.PrefixLen {
				b := build(tagSpec{tag.Type, tag.Timestamp, tag.Prefix[:tag.PrefixLen]})
				var again Tag
				require.NoError(t, NewReader(bytes.NewReader(b), 0).Next(&again))
				again.StreamID = tag.StreamID
				require.Equal(t, tag, again)
			}
		}
	})
}
