package sfu

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewClientID(t *testing.T) {
	re := regexp.MustCompile(`^[a-z2-7]{8}$`)
	seen := make(map[string]bool)
	for range 100000 {
		id := NewClientID()
		require.Regexp(t, re, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}
