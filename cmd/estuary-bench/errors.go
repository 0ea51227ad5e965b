package main

import "errors"

// Errors of estuary-bench. A reader's error becomes its join-failure or disconnect reason.
var (
	// ErrUsage: bad flags.
	ErrUsage = errors.New("usage")
	// ErrStatus: the server answered an HTTP request with an unexpected status.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrNoMedia: joined (or connected) but no media arrived within the join timeout.
	ErrNoMedia = errors.New("no media within the join timeout")
	// ErrRefused: the server refused to play (RTMP onStatus error, WHEP answer without tracks).
	ErrRefused = errors.New("play refused")
	// ErrDisconnected: the server ended the connection before the run ended.
	ErrDisconnected = errors.New("disconnected by the server")
)
