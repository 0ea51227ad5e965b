package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// Client IDs are 8 base32 characters (40 bits). Each is a bijective scramble of a process-wide
// counter keyed with random constants, so IDs look random, differ between processes, and never repeat
// within one process (for 2^40 IDs).
const (
	clientIDBits  = 40
	clientIDMask  = 1<<clientIDBits - 1
	clientIDAlpha = "abcdefghijklmnopqrstuvwxyz234567"
)

var (
	clientIDCounter atomic.Uint64
	clientIDKeys    = newClientIDKeys()
)

func newClientIDKeys() [3]uint64 {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to fixed keys (still unique).
		b = [24]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	}
	var k [3]uint64
	for i := range k {
		k[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	k[0] |= 1 // multipliers must be odd to be bijective mod 2^40
	k[2] |= 1
	return k
}

// scrambleClientID is a bijection on 40-bit values: multiply by an odd constant, add, xorshift,
// multiply again (each step is invertible modulo 2^40).
func scrambleClientID(n uint64) uint64 {
	x := (n*clientIDKeys[0] + clientIDKeys[1]) & clientIDMask
	x ^= x >> 20
	x = (x * clientIDKeys[2]) & clientIDMask
	x ^= x >> 17
	return x
}

// NewClientID returns a short unique client ID.
func NewClientID() string {
	x := scrambleClientID(clientIDCounter.Add(1))
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = clientIDAlpha[x&31]
		x >>= 5
	}
	return string(b[:])
}
