package sfu

import (
	"sync/atomic"
	"time"
)

// Stream is one stream of the hub.
type Stream struct {
	hub     *Hub
	key     string
	created time.Time

	// Guarded by hub.mu.
	pub        *Publication // the live publication; nil during grace
	tracks     []*Track
	subs       []*subscription
	claiming   bool        // a Publish is asking the Registry
	graceTimer *time.Timer // running while in grace
	graceGen   uint64      // identifies the current grace timer
	ended      bool        // removed from the hub
}

// subscription is one Subscriber's hold on a stream.
type subscription struct {
	stream  *Stream
	sub     Subscriber
	removes []func() // writer removals; guarded by hub.mu
	joined  bool     // Subscribe finished; guarded by hub.mu
	gone    atomic.Bool
}

// Key is "{app}/{stream}".
func (s *Stream) Key() string { return s.key }

// Publisher returns the live publisher, or nil during the grace period.
func (s *Stream) Publisher() Publisher {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if s.pub == nil {
		return nil
	}
	return s.pub.pub
}

// Publication returns the live publication, or nil during the grace period.
func (s *Stream) Publication() *Publication {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.pub
}

// Tracks returns the stream's tracks.
func (s *Stream) Tracks() []*Track {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return append([]*Track(nil), s.tracks...)
}

// Track returns the stream's track with the given ID, or nil.
func (s *Stream) Track(id string) *Track {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	for _, t := range s.tracks {
		if t.ID() == id {
			return t
		}
	}
	return nil
}

// Subscribers returns a snapshot of the stream's subscribers.
func (s *Stream) Subscribers() []Subscriber {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	out := make([]Subscriber, 0, len(s.subs))
	for _, sb := range s.subs {
		out = append(out, sb.sub)
	}
	return out
}

// Created is when the stream was first published.
func (s *Stream) Created() time.Time { return s.created }

// InGrace reports whether the stream has lost its publisher and waits for one to return.
func (s *Stream) InGrace() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.graceTimer != nil
}

// stopGraceLocked stops the grace timer. hub.mu must be held.
func (s *Stream) stopGraceLocked() {
	if s.graceTimer != nil {
		s.graceTimer.Stop()
		s.graceTimer = nil
	}
	s.graceGen++
}

// removeSubLocked drops sb from the stream's list. hub.mu must be held.
func (s *Stream) removeSubLocked(sb *subscription) bool {
	for i, x := range s.subs {
		if x == sb {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return true
		}
	}
	return false
}
