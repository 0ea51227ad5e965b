package rtc

import "errors"

var (
	// ErrClosed: the engine (or a LocalTrack) is closed.
	ErrClosed = errors.New("rtc: closed")
	// ErrNoMatchingCodec: a LocalTrack was bound to a transceiver whose negotiated codecs do not
	// include the sfu track's codec.
	ErrNoMatchingCodec = errors.New("rtc: no negotiated codec matches the track")
	// ErrBadConfig: a Config field is invalid (the error names it).
	ErrBadConfig = errors.New("rtc: invalid config")
)
