package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/flvtag"
	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// flvClient makes HTTP-FLV readers: one GET each, the body read tag by tag (bodies skipped).
type flvClient struct {
	url  string
	http *http.Client
}

func newFLV(target string, hc *http.Client) playFunc {
	c := &flvClient{url: target, http: hc}
	return c.play
}

func (c *flvClient) play(ctx context.Context, v *viewer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("flv request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("flv GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: flv GET: %s: %s", ErrStatus, resp.Status, firstLine(body))
	}
	// The join timeout covers the first media tag: the body is read in this goroutine.
	stop, timedOut := v.watch(ctx, resp.Body)
	err = c.read(resp.Body, v)
	stop()
	if ctx.Err() != nil {
		return nil
	}
	if timedOut() {
		return ErrNoMedia
	}
	if !v.joined() {
		return fmt.Errorf("flv before the first media: %w", err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: end of the FLV stream", ErrDisconnected)
	}
	return err
}

// read counts tags until the body ends.
func (c *flvClient) read(body io.Reader, v *viewer) error {
	r := flvtag.NewReader(body, 64<<10)
	var t flvtag.Tag
	var counted int64
	var frames stats.FrameGapTracker
	for {
		if err := r.Next(&t); err != nil {
			return err
		}
		n := r.Bytes() - counted
		counted = r.Bytes()
		if !t.Media() {
			v.k.c.Bytes.Add(n)
			continue
		}
		if t.Keyframe() {
			v.k.c.Keyframes.Add(1)
		}
		if t.Type == flvtag.TypeVideo && !t.SequenceHeader() {
			v.frameGap(&frames, t.Timestamp)
		}
		v.media(int(n))
	}
}
