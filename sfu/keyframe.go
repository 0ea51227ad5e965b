package sfu

import "strings"

// codecID is a track's codec, resolved once from its mime type so the packet path compares integers.
type codecID uint8

const (
	codecOther codecID = iota
	codecH264
	codecH265
	codecVP8
	codecVP9
	codecAV1
)

func codecOf(mime string) codecID {
	switch {
	case strings.EqualFold(mime, "video/H264"):
		return codecH264
	case strings.EqualFold(mime, "video/H265"), strings.EqualFold(mime, "video/HEVC"):
		return codecH265
	case strings.EqualFold(mime, "video/VP8"):
		return codecVP8
	case strings.EqualFold(mime, "video/VP9"):
		return codecVP9
	case strings.EqualFold(mime, "video/AV1"):
		return codecAV1
	}
	return codecOther
}

// IsKeyframe reports whether an RTP payload of the given codec (mime type as in Codec.MimeType) starts,
// or belongs to the start of, a keyframe: the packet a decoder can begin with. H.264: an IDR or SPS NAL
// unit, a STAP-A holding one, or the first FU-A fragment of one. H.265: an IRAP (16-21) or VPS/SPS/PPS
// NAL unit, in an aggregation packet or the first fragment unit. VP8: the start of a key frame's first
// partition. VP9: the start of a frame that is not inter-predicted. AV1: the first packet of a new coded
// video sequence (N bit). Other codecs (audio) report false.
func IsKeyframe(mime string, payload []byte) bool {
	return isKeyframe(codecOf(mime), payload)
}

func isKeyframe(c codecID, payload []byte) bool {
	switch c {
	case codecH264:
		return h264Keyframe(payload)
	case codecH265:
		return h265Keyframe(payload)
	case codecVP8:
		return vp8Keyframe(payload)
	case codecVP9:
		return vp9Keyframe(payload)
	case codecAV1:
		return av1Keyframe(payload)
	}
	return false
}

func h264KeyNAL(t byte) bool { return t == 5 || t == 7 }

func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return h264KeyNAL(t)
	case t == 24: // STAP-A: (16-bit size, NAL)*
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if size == 0 {
				return false
			}
			if h264KeyNAL(p[i+2] & 0x1f) {
				return true
			}
			i += 2 + size
		}
	case t == 28: // FU-A: FU indicator, FU header (S E R type)
		return len(p) >= 2 && p[1]&0x80 != 0 && h264KeyNAL(p[1]&0x1f)
	}
	return false
}

// h265KeyNAL: IRAP pictures (BLA, IDR, CRA: 16-21) and parameter sets (VPS, SPS, PPS: 32-34).
func h265KeyNAL(t byte) bool { return t >= 16 && t <= 21 || t >= 32 && t <= 34 }

func h265Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := p[0] >> 1 & 0x3f; t {
	case 48: // AP (RFC 7798 4.4.2): payload header, then (16-bit size, NAL)*; DONL fields are not used
		for i := 2; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if size == 0 {
				return false
			}
			if h265KeyNAL(p[i+2] >> 1 & 0x3f) {
				return true
			}
			i += 2 + size
		}
		return false
	case 49: // FU: payload header, FU header (S E type)
		return len(p) >= 3 && p[2]&0x80 != 0 && h265KeyNAL(p[2]&0x3f)
	default:
		return h265KeyNAL(t)
	}
}

// vp8Keyframe parses the RFC 7741 payload descriptor: X R N S R PID, then the optional I/L/T/K bytes.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	if b0&0x10 == 0 || b0&0x07 != 0 { // S: start of a partition; PID 0: the first partition
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0 // VP8 payload header: P bit 0 means a key frame
}

// vp9Keyframe reads the first byte of the VP9 payload descriptor: I P L F B E V Z. A keyframe starts
// with B (beginning of a frame) set and P (inter-picture predicted) clear.
func vp9Keyframe(p []byte) bool {
	return len(p) >= 1 && p[0]&0x08 != 0 && p[0]&0x40 == 0
}

// av1Keyframe reads the AV1 aggregation header Z Y W W N - - -: N marks the first packet of a coded
// video sequence, which starts with a keyframe.
func av1Keyframe(p []byte) bool {
	return len(p) >= 1 && p[0]&0x08 != 0
}
