package sfu

import "errors"

var (
	// ErrStreamNotFound: nobody publishes the stream (and no puller could find it).
	ErrStreamNotFound = errors.New("stream not found")
	// ErrPublisherExists: the stream already has a live publisher.
	ErrPublisherExists = errors.New("stream is already being published")
	// ErrInvalidKey: the stream key is not "{app}/{stream}" with parts of [A-Za-z0-9_.-]+ (and no "..").
	ErrInvalidKey = errors.New("invalid stream key")
	// ErrTrackSkipped is returned by Subscriber.AddTrack for a track the subscriber does not take.
	ErrTrackSkipped = errors.New("track skipped by subscriber")
	// ErrClosed: the hub, stream, track or writer is closed.
	ErrClosed = errors.New("closed")
	// ErrForbidden: this node refuses the client (an edge takes no publishers; later, auth denials).
	// Adapters answer it with 403 and the error's text as the reason.
	ErrForbidden = errors.New("not allowed on this node")
	// ErrNoTracks: a publication must have at least one track.
	ErrNoTracks = errors.New("publication has no tracks")
	// ErrInvalidTrack: a declared track has no ID, a duplicate ID, or a kind other than audio or video.
	ErrInvalidTrack = errors.New("invalid track")
)
