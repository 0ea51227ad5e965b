package cascade

import (
	"errors"
	"fmt"

	"github.com/estuary-media/estuary/sfu"
)

var (
	// ErrNotFound: no lease exists for the stream key (nobody publishes it in the cluster). It wraps
	// sfu.ErrStreamNotFound, so errors.Is(err, sfu.ErrStreamNotFound) holds too.
	ErrNotFound = fmt.Errorf("cascade: no lease: %w", sfu.ErrStreamNotFound)
	// ErrInvalidRecord: a stored lease, node record or announcement failed to decode or validate.
	ErrInvalidRecord = errors.New("cascade: invalid record")
	// ErrInvalidConfig: the registry configuration is unusable (bad node id, bad Redis URL...).
	ErrInvalidConfig = errors.New("cascade: invalid config")
	// ErrLeaseLost: the lease now belongs to another owner (fenced by a takeover, or taken after it
	// expired); the holder must stop publishing.
	ErrLeaseLost = errors.New("cascade: lease lost")
	// ErrClosed: the registry is closed.
	ErrClosed = errors.New("cascade: registry closed")
)

var (
	// ErrInvalidTrackList: a relay track list (GET /relay/v1/{app}/{stream}) failed to decode or validate.
	ErrInvalidTrackList = errors.New("cascade: invalid relay track list")
	// ErrRelay: pulling a stream over the relay failed (the origin refused, answered badly, or the
	// WebRTC session did not come up).
	ErrRelay = errors.New("cascade: relay failed")
	// ErrEdgePublish: an edge node takes no publishers; the error text names the origins.
	// It wraps sfu.ErrForbidden, so adapters answer 403 (WHIP) or an RTMP error status.
	ErrEdgePublish = fmt.Errorf("cascade: edge node takes no publishers: %w", sfu.ErrForbidden)
)
