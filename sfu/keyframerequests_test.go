package sfu

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKeyframeRequestsCounted: KeyframeRequests counts what reached the publisher, not what the rate
// limit swallowed.
func TestKeyframeRequestsCounted(t *testing.T) {
	h := newTestHub(t, Config{KeyframeInterval: time.Hour}, Deps{})
	pub := &fakePub{ID: "p"}
	p, err := h.Publish(context.Background(), "live/kf", pub, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	require.Zero(t, tr.KeyframeRequests())
	for range 3 {
		tr.RequestKeyframe()
	}
	require.Equal(t, uint64(1), tr.KeyframeRequests())
	require.Equal(t, int32(1), pub.keyframeCalls.Load())
	p.Close()
}
