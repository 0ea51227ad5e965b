package codec

import (
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// H.265 NAL unit types ingest cares about.
const (
	H265NALTrailR      = 1
	H265NALBLAWLP      = 16 // first IRAP type
	H265NALCRA         = 21
	H265NALIRAPMax     = 23 // last IRAP type (reserved IRAP included)
	H265NALVPS         = 32
	H265NALSPS         = 33
	H265NALPPS         = 34
	H265NALAUD         = 35
	H265NALFiller      = 38
	H265NALPrefixSEI   = 39
	H265NALSuffixSEI   = 40
	H265NALAggregation = 48
	H265NALFU          = 49
)

// H265NALType returns the nal_unit_type of an H.265 NAL unit.
func H265NALType(nalu []byte) int {
	if len(nalu) == 0 {
		return -1
	}
	return int(nalu[0]>>1) & 0x3f
}

// HEVCConfig is an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1).
type HEVCConfig struct {
	ProfileSpace  uint8
	Tier          uint8
	Profile       uint8 // general_profile_idc
	Level         uint8 // general_level_idc (30 x level)
	NALLengthSize int
	VPS, SPS, PPS [][]byte
	Other         [][]byte // SEI and other arrays, in order
}

// ParseHEVCConfig parses an HEVCDecoderConfigurationRecord. The NAL units are copies.
func ParseHEVCConfig(b []byte) (*HEVCConfig, error) {
	if len(b) < 23 {
		return nil, fmt.Errorf("hvcC: %w", ErrShort)
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("hvcC version %d: %w", b[0], ErrVersion)
	}
	c := &HEVCConfig{
		ProfileSpace:  b[1] >> 6,
		Tier:          b[1] >> 5 & 1,
		Profile:       b[1] & 0x1f,
		Level:         b[12],
		NALLengthSize: int(b[21]&3) + 1,
	}
	if c.NALLengthSize == 3 {
		return nil, fmt.Errorf("hvcC: NAL length size 3: %w", ErrVersion)
	}
	arrays := int(b[22])
	off := 23
	for range arrays {
		if off+3 > len(b) {
			return nil, fmt.Errorf("hvcC array: %w", ErrShort)
		}
		typ := int(b[off] & 0x3f)
		nalus, next, err := readParamSets(b, off+1, int(binary.BigEndian.Uint16(b[off+1:])), 2)
		if err != nil {
			return nil, fmt.Errorf("hvcC NAL type %d: %w", typ, err)
		}
		off = next
		switch typ {
		case H265NALVPS:
			c.VPS = append(c.VPS, nalus...)
		case H265NALSPS:
			c.SPS = append(c.SPS, nalus...)
		case H265NALPPS:
			c.PPS = append(c.PPS, nalus...)
		default:
			c.Other = append(c.Other, nalus...)
		}
	}
	if len(c.VPS) == 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
		return nil, fmt.Errorf("hvcC: %w", ErrNoParameterSets)
	}
	return c, nil
}

// HEVCInfo is what an H.265 SPS tells the API.
type HEVCInfo struct {
	Width, Height int
	Profile       string // "Main", "Main 10", ...
	Level         string // "4.1"
}

// ParseHEVCSPS parses an H.265 SPS NAL unit (with its 2-byte header).
func ParseHEVCSPS(nalu []byte) (HEVCInfo, error) {
	var sps h265.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return HEVCInfo{}, fmt.Errorf("%w: %w", ErrSPS, err)
	}
	lvl := int(sps.ProfileTierLevel.GeneralLevelIdc)
	info := HEVCInfo{
		Width:   sps.Width(),
		Height:  sps.Height(),
		Profile: HEVCProfileName(sps.ProfileTierLevel.GeneralProfileIdc),
		Level:   fmt.Sprintf("%d.%d", lvl/30, lvl%30/3),
	}
	return info, nil
}

// HEVCProfileName names a general_profile_idc.
func HEVCProfileName(idc uint8) string {
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Range Extensions"
	}
	return fmt.Sprintf("profile %d", idc)
}

// HEVCIsIRAP reports whether an H.265 NAL unit is an IRAP picture's slice (types 16-23).
func HEVCIsIRAP(nalu []byte) bool {
	t := H265NALType(nalu)
	return t >= H265NALBLAWLP && t <= H265NALIRAPMax
}

// Marshal encodes the record with VPS, SPS, PPS and Other arrays (general_* fields other than profile,
// tier and level left zero).
func (c *HEVCConfig) Marshal() []byte {
	b := make([]byte, 23, 64)
	b[0] = 1
	b[1] = c.ProfileSpace<<6 | c.Tier<<5 | c.Profile&0x1f
	b[12] = c.Level
	b[13], b[14] = 0xf0, 0
	b[15], b[16], b[17], b[18] = 0xfc, 0xfd, 0xf8, 0xf8
	b[21] = 0x0c | byte(c.NALLengthSize-1)
	arrays := [][][]byte{c.VPS, c.SPS, c.PPS}
	types := []int{H265NALVPS, H265NALSPS, H265NALPPS}
	if len(c.Other) > 0 {
		arrays = append(arrays, c.Other)
		types = append(types, H265NALType(c.Other[0]))
	}
	for i, a := range arrays {
		if len(a) == 0 {
			continue
		}
		b[22]++
		b = append(b, 0x80|byte(types[i]), byte(len(a)>>8), byte(len(a)))
		for _, n := range a {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
	}
	return b
}
