package codec

import (
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// H.264 NAL unit types ingest cares about.
const (
	H264NALSlice  = 1
	H264NALIDR    = 5
	H264NALSEI    = 6
	H264NALSPS    = 7
	H264NALPPS    = 8
	H264NALAUD    = 9
	H264NALFiller = 12
)

// AVCConfig is an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
type AVCConfig struct {
	Profile       uint8 // AVCProfileIndication
	Compatibility uint8 // profile_compatibility (constraint flags)
	Level         uint8 // AVCLevelIndication
	NALLengthSize int   // 1, 2 or 4
	SPS           [][]byte
	PPS           [][]byte
}

// ParseAVCConfig parses an AVCDecoderConfigurationRecord. The parameter sets are copies.
func ParseAVCConfig(b []byte) (*AVCConfig, error) {
	if len(b) < 6 {
		return nil, fmt.Errorf("avcC: %w", ErrShort)
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("avcC version %d: %w", b[0], ErrVersion)
	}
	c := &AVCConfig{Profile: b[1], Compatibility: b[2], Level: b[3], NALLengthSize: int(b[4]&3) + 1}
	if c.NALLengthSize == 3 {
		return nil, fmt.Errorf("avcC: NAL length size 3: %w", ErrVersion)
	}
	off := 5
	var err error
	c.SPS, off, err = readParamSets(b, off, int(b[off]&0x1f), 1)
	if err != nil {
		return nil, fmt.Errorf("avcC SPS: %w", err)
	}
	if off >= len(b) {
		return nil, fmt.Errorf("avcC PPS count: %w", ErrShort)
	}
	c.PPS, _, err = readParamSets(b, off, int(b[off]), 1)
	if err != nil {
		return nil, fmt.Errorf("avcC PPS: %w", err)
	}
	// Trailing High-profile fields (chroma_format etc.) are not needed.
	if len(c.SPS) == 0 || len(c.PPS) == 0 {
		return nil, fmt.Errorf("avcC: %w", ErrNoParameterSets)
	}
	return c, nil
}

// readParamSets reads count (u16 length, data) entries starting after the count field at off+skip.
func readParamSets(b []byte, off, count, skip int) ([][]byte, int, error) {
	off += skip
	out := make([][]byte, 0, count)
	for range count {
		if off+2 > len(b) {
			return nil, off, ErrShort
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if n == 0 || off+n > len(b) {
			return nil, off, ErrShort
		}
		out = append(out, append([]byte(nil), b[off:off+n]...))
		off += n
	}
	return out, off, nil
}

// AVCInfo is what an H.264 SPS tells the API.
type AVCInfo struct {
	Width, Height int
	Profile       string // "Baseline", "Main", "High", ...
	Level         string // "3.1"
	// ProfileLevelID is the SDP profile-level-id: profile_idc, constraint flags, level_idc in hex.
	ProfileLevelID string
}

// ParseAVCSPS parses an H.264 SPS NAL unit (with its header byte).
func ParseAVCSPS(nalu []byte) (AVCInfo, error) {
	var sps h264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return AVCInfo{}, fmt.Errorf("%w: %w", ErrSPS, err)
	}
	info := AVCInfo{
		Width:          sps.Width(),
		Height:         sps.Height(),
		Profile:        AVCProfileName(sps.ProfileIdc, nalu[2]),
		Level:          fmt.Sprintf("%d.%d", sps.LevelIdc/10, sps.LevelIdc%10),
		ProfileLevelID: fmt.Sprintf("%02x%02x%02x", nalu[1], nalu[2], nalu[3]),
	}
	if sps.LevelIdc == 9 {
		info.Level = "1b"
	}
	return info, nil
}

// AVCProfileName names an H.264 profile_idc (constraint flags distinguish Constrained Baseline).
func AVCProfileName(profileIdc, constraints uint8) string {
	switch profileIdc {
	case 66:
		if constraints&0x40 != 0 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return fmt.Sprintf("profile %d", profileIdc)
}

// H.264 slice types (slice_type % 5).
const (
	SliceP  = 0
	SliceB  = 1
	SliceI  = 2
	SliceSP = 3
	SliceSI = 4
)

// AVCSliceType returns slice_type % 5 of an H.264 slice NAL unit (types 1 and 5), reading the start of its
// slice header; ok is false for other NAL units or a header too short to read.
func AVCSliceType(nalu []byte) (sliceType int, ok bool) {
	if len(nalu) < 2 {
		return 0, false
	}
	t := nalu[0] & 0x1f
	if t != H264NALSlice && t != H264NALIDR {
		return 0, false
	}
	r := bitReader{b: nalu[1:]}
	r.ue() // first_mb_in_slice
	st := r.ue()
	if r.err || st > 9 {
		return 0, false
	}
	return int(st % 5), true
}

// AVCDisposableB reports whether an H.264 NAL unit is a slice of a non-reference B picture
// (nal_ref_idc 0, slice_type B): dropping it affects no other picture.
func AVCDisposableB(nalu []byte) bool {
	if len(nalu) == 0 || nalu[0]&0x60 != 0 {
		return false
	}
	st, ok := AVCSliceType(nalu)
	return ok && st == SliceB
}

// Marshal encodes the record (version 1, without the High-profile trailer).
func (c *AVCConfig) Marshal() []byte {
	b := []byte{1, c.Profile, c.Compatibility, c.Level, 0xfc | byte(c.NALLengthSize-1), 0xe0 | byte(len(c.SPS))}
	for _, s := range c.SPS {
		b = append(b, byte(len(s)>>8), byte(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(c.PPS)))
	for _, p := range c.PPS {
		b = append(b, byte(len(p)>>8), byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// NewAVCConfig makes a record for the given parameter sets (profile and level from the first SPS).
func NewAVCConfig(sps, pps [][]byte) *AVCConfig {
	c := &AVCConfig{NALLengthSize: 4, SPS: sps, PPS: pps}
	if len(sps) > 0 && len(sps[0]) >= 4 {
		c.Profile, c.Compatibility, c.Level = sps[0][1], sps[0][2], sps[0][3]
	}
	return c
}
