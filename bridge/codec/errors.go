// Package codec parses codec configuration records as carried in FLV/MP4 (AVCDecoderConfigurationRecord,
// HEVCDecoderConfigurationRecord, AV1CodecConfigurationRecord, AudioSpecificConfig, OpusHead) and the
// few bitstream fields ingest needs (SPS size and profile, slice types for B-frame detection).
package codec

import "errors"

var (
	// ErrShort: the record or NAL unit ends before a field it must hold.
	ErrShort = errors.New("codec: data too short")
	// ErrVersion: an unknown configurationVersion (or AV1 marker/version).
	ErrVersion = errors.New("codec: unsupported configuration version")
	// ErrNoParameterSets: a decoder configuration record without the parameter sets a decoder needs.
	ErrNoParameterSets = errors.New("codec: missing parameter sets")
	// ErrSPS: a sequence parameter set that cannot be parsed.
	ErrSPS = errors.New("codec: bad SPS")
	// ErrASC: an AudioSpecificConfig that cannot be used.
	ErrASC = errors.New("codec: bad AudioSpecificConfig")
	// ErrOpusHead: an OpusHead (RFC 7845 ID header) that cannot be used.
	ErrOpusHead = errors.New("codec: bad OpusHead")
	// ErrAV1Config: an AV1CodecConfigurationRecord that cannot be used.
	ErrAV1Config = errors.New("codec: bad AV1CodecConfigurationRecord")
)
