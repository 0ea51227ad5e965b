package calls

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var decodeCases = []struct {
	name string
	in   string
	want Message // Type "" means an error is expected
}{
	{name: "join", in: `{"type":"join","name":"alice"}`, want: Message{Type: TypeJoin, Name: "alice"}},
	{name: "join without name", in: `{"type":"join"}`, want: Message{Type: TypeJoin}},
	{name: "join with spaces", in: " \n{\"type\":\"join\",\"name\":\"Bob B\"}\n", want: Message{Type: TypeJoin, Name: "Bob B"}},
	{name: "offer", in: `{"type":"offer","sdp":"v=0\r\n"}`, want: Message{Type: TypeOffer, SDP: "v=0\r\n"}},
	{name: "answer", in: `{"type":"answer","sdp":"v=0\r\n"}`, want: Message{Type: TypeAnswer, SDP: "v=0\r\n"}},
	{name: "candidate", in: `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
		want: Message{Type: TypeCandidate, Candidate: &Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: ptr("0"), SDPMLineIndex: ptr(uint16(0)), UsernameFragment: ptr("abcd")}}},
	{name: "end of candidates", in: `{"type":"candidate","candidate":{"candidate":""}}`, want: Message{Type: TypeCandidate, Candidate: &Candidate{}}},
	{name: "bye", in: `{"type":"bye"}`, want: Message{Type: TypeBye}},
	{name: "not JSON", in: `hello`},
	{name: "empty", in: ``},
	{name: "truncated", in: `{"type":"join"`},
	{name: "array", in: `[{"type":"join"}]`},
	{name: "null", in: `null`},
	{name: "two objects", in: `{"type":"bye"}{"type":"bye"}`},
	{name: "trailing garbage", in: `{"type":"bye"} x`},
	{name: "missing type", in: `{"name":"alice"}`},
	{name: "unknown type", in: `{"type":"dance"}`},
	{name: "server type from client", in: `{"type":"joined","id":"x"}`},
	{name: "forged from", in: `{"type":"offer","sdp":"v=0","from":"someone"}`},
	{name: "unknown field", in: `{"type":"bye","extra":1}`},
	{name: "type not a string", in: `{"type":1}`},
	{name: "offer without sdp", in: `{"type":"offer"}`},
	{name: "offer with empty sdp", in: `{"type":"offer","sdp":""}`},
	{name: "sdp not a string", in: `{"type":"offer","sdp":5}`},
	{name: "sdp too long", in: `{"type":"offer","sdp":"` + string(make([]byte, 0)) + `0123456789012345678901234567890123456789"}`},
	{name: "offer with name", in: `{"type":"offer","sdp":"v=0","name":"x"}`},
	{name: "candidate missing", in: `{"type":"candidate"}`},
	{name: "candidate null", in: `{"type":"candidate","candidate":null}`},
	{name: "candidate without mid or index", in: `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host"}}`},
	{name: "candidate index negative", in: `{"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":-1}}`},
	{name: "candidate with control chars", in: `{"type":"candidate","candidate":{"candidate":"a\nb","sdpMid":"0"}}`},
	{name: "name too long", in: `{"type":"join","name":"` + string(make65()) + `"}`},
	{name: "name with control", in: `{"type":"join","name":"a\u0000b"}`},
	{name: "bye with sdp", in: `{"type":"bye","sdp":"v=0"}`},
	{name: "invalid UTF-8 becomes U+FFFD", in: "{\"type\":\"join\",\"name\":\"\xff\"}", want: Message{Type: TypeJoin, Name: "\uFFFD"}},
}

func ptr[T any](v T) *T { return &v }

func make65() []byte {
	b := make([]byte, MaxNameLen+1)
	for i := range b {
		b[i] = 'a'
	}
	return b
}

func TestDecodeClient(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeClient([]byte(tc.in), 32)
			if tc.want.Type == "" {
				require.ErrorIs(t, err, ErrBadMessage)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, m)
		})
	}
}

func TestEncode(t *testing.T) {
	peers := []Peer{}
	for _, tc := range []struct {
		name string
		m    Message
		want string
	}{
		{name: "joined alone", m: Message{Type: TypeJoined, ID: "a", Peers: &peers},
			want: `{"type":"joined","id":"a","peers":[]}`},
		{name: "joined with ice", m: Message{Type: TypeJoined, ID: "b", Peers: &[]Peer{{ID: "a", Name: "alice"}},
			ICEServers: []ICEServer{{URLs: []string{"turn:h:1?transport=udp"}, Username: "u", Credential: "c"}}},
			want: `{"type":"joined","id":"b","peers":[{"id":"a","name":"alice"}],"iceServers":[{"urls":["turn:h:1?transport=udp"],"username":"u","credential":"c"}]}`},
		{name: "peer-joined", m: Message{Type: TypePeerJoined, Peer: &Peer{ID: "b", Name: "bob"}},
			want: `{"type":"peer-joined","peer":{"id":"b","name":"bob"}}`},
		{name: "peer-left", m: Message{Type: TypePeerLeft, ID: "b"}, want: `{"type":"peer-left","id":"b"}`},
		{name: "relayed candidate", m: Message{Type: TypeCandidate, From: "a", Candidate: &Candidate{Candidate: "c", SDPMid: ptr("0"), SDPMLineIndex: ptr(uint16(0))}},
			want: `{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0},"from":"a"}`},
		{name: "error", m: Message{Type: TypeError, Code: CodeRoomFull, Text: "full"},
			want: `{"type":"error","code":"room-full","message":"full"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.JSONEq(t, tc.want, string(Encode(tc.m)))
		})
	}
}

// FuzzDecodeClient: the decoder never panics, accepts only known client types, and what it accepts
// re-encodes to a message it accepts again, unchanged.
func FuzzDecodeClient(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClient(data, 4096)
		if err != nil {
			require.ErrorIs(t, err, ErrBadMessage)
			return
		}
		switch m.Type {
		case TypeJoin, TypeOffer, TypeAnswer, TypeCandidate, TypeBye:
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
		require.Empty(t, m.From)
		again, err := DecodeClient(Encode(m), 4096)
		require.NoError(t, err, "re-encoded: %s", Encode(m))
		require.Equal(t, m, again)
		require.True(t, json.Valid(Encode(m)))
	})
}
