package signaling

import (
	"errors"
	"net/http"

	"github.com/estuary-media/estuary/sfu"
)

var (
	// ErrContentType: the request body is not of the expected media type (415).
	ErrContentType = errors.New("unsupported content type")
	// ErrTooLarge: the request body is larger than Config.MaxSDP (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrBadSDP: the offer is not a usable SDP offer (400).
	ErrBadSDP = errors.New("invalid SDP offer")
	// ErrNoCodec: no offered media section has a codec we support (400).
	ErrNoCodec = errors.New("no supported codec offered")
	// ErrBadFragment: a PATCH body is not a valid trickle-ice-sdpfrag (400).
	ErrBadFragment = errors.New("invalid trickle-ice-sdpfrag")
	// ErrBadRequest: an SRS API request is malformed (bad JSON, missing sdp, bad streamurl) (400).
	ErrBadRequest = errors.New("bad request")
	// ErrMissingSDP: an SRS API request has no sdp (400).
	ErrMissingSDP = errors.New("missing sdp")
	// ErrBadStreamURL: an SRS API streamurl is not webrtc://host[:port]/app/stream (400).
	ErrBadStreamURL = errors.New("streamurl must be webrtc://host[:port]/app/stream")
	// ErrSessionNotFound: no session has this resource ID on this node (404).
	ErrSessionNotFound = errors.New("session not found")
	// ErrPrecondition: PATCH If-Match does not match the session's ETag (412).
	ErrPrecondition = errors.New("etag does not match")
	// ErrTooManySessions: Config.MaxSessions sessions are live (503).
	ErrTooManySessions = errors.New("too many WebRTC sessions")
	// ErrClosed: the server is closed (503).
	ErrClosed = errors.New("signaling server closed")
)

// StatusFor maps an error of this package or of sfu to its HTTP status code.
func StatusFor(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrContentType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, sfu.ErrInvalidKey), errors.Is(err, ErrBadSDP), errors.Is(err, ErrNoCodec),
		errors.Is(err, ErrBadFragment), errors.Is(err, ErrBadRequest), errors.Is(err, ErrBadStreamURL),
		errors.Is(err, ErrMissingSDP):
		return http.StatusBadRequest
	case errors.Is(err, sfu.ErrStreamNotFound), errors.Is(err, ErrSessionNotFound):
		return http.StatusNotFound
	case errors.Is(err, sfu.ErrPublisherExists):
		return http.StatusConflict
	case errors.Is(err, sfu.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, sfu.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, ErrClosed), errors.Is(err, sfu.ErrClosed), errors.Is(err, ErrTooManySessions):
		return http.StatusServiceUnavailable
	}

	return http.StatusInternalServerError
}

// SRS error codes (SRS's srs_kernel_error.hpp numbers) answered by the /rtc/v1/ API, always with HTTP 200.
const (
	SRSCodeOK           = 0
	SRSCodeSDPDecode    = 5012 // ERROR_RTC_SDP_DECODE: the offer does not parse
	SRSCodeSDPExchange  = 5018 // ERROR_RTC_SDP_EXCHANGE: negotiation failed (no common codec, internal)
	SRSCodeAPIBody      = 5019 // ERROR_RTC_API_BODY: the body is not JSON (or too large)
	SRSCodeStreamBusy   = 5020 // ERROR_RTC_SOURCE_BUSY: the stream already has a publisher
	SRSCodeInvalidParam = 5023 // ERROR_RTC_INVALID_PARAMS: missing sdp, bad streamurl, bad key
	SRSCodeNoPublisher  = 5028 // ERROR_RTC_NO_PUBLISHER: play of a stream nobody publishes
	SRSCodeDisabled     = 5021 // ERROR_RTC_DISABLED: the server is shutting down
)

// SRSCodeFor maps an error to the SRS code the /rtc/v1/ API answers.
func SRSCodeFor(err error) int {
	switch {
	case err == nil:
		return SRSCodeOK
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrTooLarge), errors.Is(err, ErrContentType):
		return SRSCodeAPIBody
	case errors.Is(err, ErrBadStreamURL), errors.Is(err, sfu.ErrInvalidKey), errors.Is(err, ErrMissingSDP):
		return SRSCodeInvalidParam
	case errors.Is(err, ErrBadSDP):
		return SRSCodeSDPDecode
	case errors.Is(err, sfu.ErrPublisherExists):
		return SRSCodeStreamBusy
	case errors.Is(err, sfu.ErrStreamNotFound):
		return SRSCodeNoPublisher
	case errors.Is(err, ErrClosed), errors.Is(err, sfu.ErrClosed), errors.Is(err, ErrTooManySessions),
		errors.Is(err, sfu.ErrForbidden), errors.Is(err, sfu.ErrUnauthorized):
		return SRSCodeDisabled
	}

	return SRSCodeSDPExchange
}
