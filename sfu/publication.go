package sfu

import "sync/atomic"

// Publication is a publisher's hold on a stream.
type Publication struct {
	stream *Stream
	pub    Publisher
	tracks []*Track // in declared order; fixed at Publish
	closed atomic.Bool
}

// Track returns the publication's track with the given ID, or nil.
func (p *Publication) Track(id string) *Track {
	for _, t := range p.tracks {
		if t.ID() == id {
			return t
		}
	}
	return nil
}

// Tracks returns the publication's tracks in the order they were declared.
func (p *Publication) Tracks() []*Track {
	return append([]*Track(nil), p.tracks...)
}

// Stream returns the publication's stream.
func (p *Publication) Stream() *Stream { return p.stream }

// Publisher returns the publisher that holds the publication.
func (p *Publication) Publisher() Publisher { return p.pub }

// Closed reports whether the publication has ended (Close, a takeover or the hub's Close).
func (p *Publication) Closed() bool { return p.closed.Load() }

// Close ends the publication: the stream enters its grace period. Idempotent.
//
// It does not call the Publisher's Close (the adapter calls Publication.Close when its publisher
// leaves). The adapter must stop writing to the tracks before or when it calls Close.
func (p *Publication) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.stream.hub.unpublish(p)
}
