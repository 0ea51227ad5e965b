package cascade

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var recordCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"valid", `{"key":"live/test","node_id":"origin-1","relay_url":"http://10.0.0.1:9090/relay/v1/live/test","owner_token":"0123abcd","started_at":"2026-01-02T03:04:05.678Z"}`, true},
	{"valid without relay url", `{"key":"live/test","node_id":"a","relay_url":"","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, true},
	{"valid with offset time and unknown field", `{"key":"a.b/c_d-e","node_id":"n.1","owner_token":"t","started_at":"2025-06-01T12:00:00+02:00","extra":[1,2]}`, true},
	{"https relay", `{"key":"live/test","node_id":"a","relay_url":"https://o1.example/relay/v1/live/test","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, true},
	{"missing key", `{"node_id":"a","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"bad key", `{"key":"live/../x","node_id":"a","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"key without stream", `{"key":"live","node_id":"a","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"missing node id", `{"key":"live/test","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"node id with slash", `{"key":"live/test","node_id":"a/b","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"missing owner token", `{"key":"live/test","node_id":"a","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"missing started_at", `{"key":"live/test","node_id":"a","owner_token":"t"}`, false},
	{"started_at in 1990", `{"key":"live/test","node_id":"a","owner_token":"t","started_at":"1990-01-02T03:04:05Z"}`, false},
	{"started_at far in the future", `{"key":"live/test","node_id":"a","owner_token":"t","started_at":"2999-01-02T03:04:05Z"}`, false},
	{"started_at not a time", `{"key":"live/test","node_id":"a","owner_token":"t","started_at":"yesterday"}`, false},
	{"relay url not http", `{"key":"live/test","node_id":"a","relay_url":"ftp://x/y","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"relay url without host", `{"key":"live/test","node_id":"a","relay_url":"http:///x","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"wrong type", `{"key":5,"node_id":"a","owner_token":"t","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"null", `null`, false},
	{"array", `[]`, false},
	{"empty", ``, false},
	{"truncated", `{"key":"live/test","node_id":"a"`, false},
	{"too large", `{"key":"live/test","node_id":"a","owner_token":"` + strings.Repeat("x", 5000) + `","started_at":"2026-01-02T03:04:05Z"}`, false},
}

func TestDecodeRecord(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := DecodeRecord([]byte(tc.in))
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidRecord)
				require.Equal(t, Record{}, rec)

				return
			}
			require.NoError(t, err)
			require.NoError(t, rec.Validate())
			b, err := EncodeRecord(rec)
			require.NoError(t, err)
			again, err := DecodeRecord(b)
			require.NoError(t, err)
			requireSameRecord(t, rec, again)
		})
	}
}

func TestDecodeRecordFields(t *testing.T) {
	rec, err := DecodeRecord([]byte(recordCases[0].in))
	require.NoError(t, err)
	require.Equal(t, "live/test", rec.Key)
	require.Equal(t, "origin-1", rec.NodeID)
	require.Equal(t, "http://10.0.0.1:9090/relay/v1/live/test", rec.RelayURL)
	require.Equal(t, "0123abcd", rec.OwnerToken)
	require.True(t, rec.StartedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)))
	_, err = EncodeRecord(Record{Key: "bad", NodeID: "a", OwnerToken: "t", StartedAt: time.Now()})
	require.ErrorIs(t, err, ErrInvalidRecord)
}

func requireSameRecord(t *testing.T, a, b Record) {
	t.Helper()
	require.True(t, a.StartedAt.Equal(b.StartedAt), "started_at %s != %s", a.StartedAt, b.StartedAt)
	a.StartedAt, b.StartedAt = time.Time{}, time.Time{}
	require.Equal(t, a, b)
}

func FuzzDecodeRecord(f *testing.F) {
	for _, tc := range recordCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidRecord)

			return
		}
		enc, err := EncodeRecord(rec)
		require.NoError(t, err, "a decoded record must encode")
		again, err := DecodeRecord(enc)
		require.NoError(t, err, "an encoded record must decode: %s", enc)
		requireSameRecord(t, rec, again)
	})
}

var nodeCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"valid origin", `{"node_id":"o1","role":"origin","advertise":"http://127.0.0.11:9090","started_at":"2026-01-02T03:04:05Z"}`, true},
	{"valid edge no advertise", `{"node_id":"e1","role":"edge","advertise":"","started_at":"2026-01-02T03:04:05Z"}`, true},
	{"bad role", `{"node_id":"o1","role":"primary","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"missing node id", `{"role":"origin","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"bad advertise", `{"node_id":"o1","role":"origin","advertise":"127.0.0.1:9090","started_at":"2026-01-02T03:04:05Z"}`, false},
	{"missing started_at", `{"node_id":"o1","role":"origin"}`, false},
	{"garbage", `{{`, false},
}

func TestDecodeNode(t *testing.T) {
	for _, tc := range nodeCases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := DecodeNode([]byte(tc.in))
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidRecord)

				return
			}
			require.NoError(t, err)
			b, err := EncodeNode(n)
			require.NoError(t, err)
			again, err := DecodeNode(b)
			require.NoError(t, err)
			require.True(t, n.StartedAt.Equal(again.StartedAt))
			require.Equal(t, n.NodeID, again.NodeID)
			require.Equal(t, n.Role, again.Role)
			require.Equal(t, n.Advertise, again.Advertise)
		})
	}
}

func FuzzDecodeNode(f *testing.F) {
	for _, tc := range nodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNode(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidRecord)

			return
		}
		enc, err := EncodeNode(n)
		require.NoError(t, err)
		again, err := DecodeNode(enc)
		require.NoError(t, err)
		require.True(t, n.StartedAt.Equal(again.StartedAt))
		n.StartedAt, again.StartedAt = time.Time{}, time.Time{}
		require.Equal(t, n, again)
	})
}

var eventCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"start", `{"type":"start","record":` + recordCases[0].in + `}`, true},
	{"stop", `{"type":"stop","record":` + recordCases[1].in + `}`, true},
	{"bad type", `{"type":"moved","record":` + recordCases[0].in + `}`, false},
	{"bad record", `{"type":"start","record":` + recordCases[5].in + `}`, false},
	{"no record", `{"type":"start"}`, false},
	{"garbage", `"start"`, false},
}

func TestDecodeEvent(t *testing.T) {
	for _, tc := range eventCases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(tc.in))
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidRecord)

				return
			}
			require.NoError(t, err)
			b, err := EncodeEvent(ev)
			require.NoError(t, err)
			again, err := DecodeEvent(b)
			require.NoError(t, err)
			require.Equal(t, ev.Type, again.Type)
			requireSameRecord(t, ev.Record, again.Record)
		})
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, tc := range eventCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidRecord)

			return
		}
		enc, err := EncodeEvent(ev)
		require.NoError(t, err)
		again, err := DecodeEvent(enc)
		require.NoError(t, err)
		require.Equal(t, ev.Type, again.Type)
		requireSameRecord(t, ev.Record, again.Record)
	})
}

func TestValidNodeID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"simple", "origin-1", true},
		{"dots and underscores", "a.b_c", true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"colon", "a:1", false},
		{"too long", strings.Repeat("a", 129), false},
		{"max length", strings.Repeat("a", 128), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ok, ValidNodeID(tc.id))
		})
	}
}
