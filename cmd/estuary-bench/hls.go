package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/m3u8"
)

// hlsClient makes HLS readers: poll the media playlist (a master playlist's first variant), fetch
// each new segment once (the init section once), starting at the live edge.
type hlsClient struct {
	url  string
	http *http.Client
}

func newHLS(target string, hc *http.Client) playFunc {
	c := &hlsClient{url: target, http: hc}
	return c.play
}

// hlsReader is one reader's position in the stream.
type hlsReader struct {
	c       *hlsClient
	v       *viewer
	listURL *url.URL // the media playlist (after redirects)
	mapURI  string
	next    uint64 // next media sequence number to fetch
	started bool
}

func (c *hlsClient) play(ctx context.Context, v *viewer) error {
	r := &hlsReader{c: c, v: v}
	for {
		p, err := r.playlist(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := r.fetchNew(ctx, p); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if p.Ended {
			return fmt.Errorf("%w: playlist ended", ErrDisconnected)
		}
		wait := time.Duration(p.TargetDuration * float64(time.Second) / 2)
		wait = min(max(wait, 100*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// playlist fetches the media playlist, following a master playlist to its first variant and
// retrying 503 (Retry-After) until the join timeout while nothing has been fetched yet.
func (r *hlsReader) playlist(ctx context.Context) (m3u8.Playlist, error) {
	target := r.c.url
	if r.listURL != nil {
		target = r.listURL.String()
	}
	for hops := 0; ; hops++ {
		body, final, retry, err := r.get(ctx, target)
		if retry > 0 && !r.v.joined() && time.Since(r.v.start)+retry < r.v.k.joinTimeout {
			select {
			case <-ctx.Done():
				return m3u8.Playlist{}, ctx.Err()
			case <-time.After(retry):
			}
			continue
		}
		if err != nil {
			return m3u8.Playlist{}, err
		}
		p, err := m3u8.Parse(body)
		if err != nil {
			return m3u8.Playlist{}, fmt.Errorf("hls playlist %s: %w", final, err)
		}
		if !p.Master {
			r.listURL = final
			return p, nil
		}
		if len(p.Variants) == 0 || hops > 2 {
			return m3u8.Playlist{}, fmt.Errorf("hls master playlist %s: no usable variant", final)
		}
		u, err := final.Parse(p.Variants[0])
		if err != nil {
			return m3u8.Playlist{}, fmt.Errorf("hls variant %q: %w", p.Variants[0], err)
		}
		target = u.String()
	}
}

// fetchNew fetches segments not fetched yet; the first time only the newest one (live edge).
func (r *hlsReader) fetchNew(ctx context.Context, p m3u8.Playlist) error {
	if len(p.Segments) == 0 {
		if !r.v.joined() && time.Since(r.v.start) > r.v.k.joinTimeout && r.v.abandon() {
			return fmt.Errorf("%w: the playlist lists no segment", ErrNoMedia)
		}
		return nil
	}
	if p.Map != "" && p.Map != r.mapURI {
		n, err := r.fetch(ctx, p.Map)
		if err != nil {
			return err
		}
		r.v.k.c.Bytes.Add(n)
		r.mapURI = p.Map
	}
	segs := p.Segments
	if !r.started {
		segs = segs[len(segs)-1:]
		r.started = true
		r.next = segs[0].Seq
	}
	for _, s := range segs {
		if s.Seq < r.next {
			continue
		}
		if s.Seq > r.next {
			r.v.k.c.Lost.Add(int64(s.Seq - r.next))
			r.v.k.c.Gaps.Add(1)
		}
		n, err := r.fetch(ctx, s.URI)
		if err != nil {
			return err
		}
		r.v.media(int(n))
		r.next = s.Seq + 1
	}
	return nil
}

// fetch GETs a segment (relative to the playlist) and returns its size.
func (r *hlsReader) fetch(ctx context.Context, ref string) (int64, error) {
	u, err := r.listURL.Parse(ref)
	if err != nil {
		return 0, fmt.Errorf("hls segment %q: %w", ref, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("hls segment: %w", err)
	}
	resp, err := r.c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("hls segment GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%w: hls segment %s: %s", ErrStatus, u.Path, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("hls segment %s: %w", u.Path, err)
	}
	return n, nil
}

// get fetches a playlist: body, final URL; retry > 0 for a 503 with Retry-After.
func (r *hlsReader) get(ctx context.Context, target string) ([]byte, *url.URL, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("hls request: %w", err)
	}
	resp, err := r.c.http.Do(req)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("hls playlist GET: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("hls playlist: %w", err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		retry := 500 * time.Millisecond
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retry = time.Duration(min(s, 5)) * time.Second
		}
		return nil, nil, retry, fmt.Errorf("%w: hls playlist: %s: %s", ErrStatus, resp.Status, firstLine(body))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, 0, fmt.Errorf("%w: hls playlist: %s: %s", ErrStatus, resp.Status, firstLine(body))
	}
	return body, resp.Request.URL, 0, nil
}
