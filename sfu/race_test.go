//go:build race

package sfu

// raceEnabled: the race detector makes sync.Pool drop items at random, so allocation counts differ.
const raceEnabled = true
