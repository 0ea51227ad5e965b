package packetize

import "errors"

var (
	// ErrAACHeader: an RFC 3640 payload whose AU-headers section is malformed (length not a whole number
	// of 16-bit AAC-hbr headers, or longer than the payload).
	ErrAACHeader = errors.New("rfc3640: malformed AU headers")
	// ErrAACTruncated: an AU header announces more data than the payload holds (and it is not a fragment).
	ErrAACTruncated = errors.New("rfc3640: access unit truncated")
	// ErrAACFragment: the payload holds a fragment of an AU larger than the packet; the stateless
	// ParseAACPayload cannot return it (use AACDepacketizer).
	ErrAACFragment = errors.New("rfc3640: fragmented access unit")
	// ErrAACFmtp: the fmtp line is not AAC-hbr or has no (valid) config.
	ErrAACFmtp = errors.New("rfc3640: unusable fmtp")
	// ErrAUTooLarge: an access unit larger than the format allows (AAC: 8191 bytes).
	ErrAUTooLarge = errors.New("access unit too large")
	// ErrEmptyAU: an empty access unit was given.
	ErrEmptyAU = errors.New("empty access unit")
	// ErrBadNALU: an AVCC/HVCC access unit whose length prefixes do not match its size.
	ErrBadNALU = errors.New("malformed length-prefixed NAL unit")
	// ErrBadOBU: a malformed AV1 OBU sequence.
	ErrBadOBU = errors.New("malformed AV1 OBU")
)
