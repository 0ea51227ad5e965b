package cascade

import (
	"context"
	"encoding/json"
	"time"
)

// refreshResult is what a lease refresh found.
type refreshResult uint8

const (
	refreshOK      refreshResult = iota + 1 // still ours; TTL extended
	refreshRetaken                          // the key was gone (expired during an outage); set again
	refreshLost                             // another owner holds it
)

// backend is the storage a registry runs on: the atomic operations the lease rules need. Both
// implementations (memoryBackend over a MemoryStore, redisBackend) give them the same semantics; the
// rules themselves live in registry, once.
type backend interface {
	// setNX sets key to val with ttl if the key is absent (SET NX PX).
	setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// get returns key's value, or nil if absent.
	get(ctx context.Context, key string) ([]byte, error)
	// replace sets key to val with ttl if its current value is exactly old (compare-and-set against the
	// old record).
	replace(ctx context.Context, key string, old, val []byte, ttl time.Duration) (bool, error)
	// refresh extends key's TTL if its owner_token is token; sets it to val if it is absent; otherwise
	// reports refreshLost with the holder's value.
	refresh(ctx context.Context, key, token string, val []byte, ttl time.Duration) (refreshResult, []byte, error)
	// release deletes key if its owner_token is token.
	release(ctx context.Context, key, token string) (bool, error)
	// set sets key unconditionally (node records, written only by their node).
	set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// deleteIf deletes key if its value is exactly val.
	deleteIf(ctx context.Context, key string, val []byte) error
	// scan returns the values of every key starting with prefix.
	scan(ctx context.Context, prefix string) ([][]byte, error)
	// publish sends msg on EventsChannel.
	publish(ctx context.Context, msg []byte) error
	// subscribe delivers EventsChannel's messages until stop is called; stop waits for its goroutines.
	subscribe() (msgs <-chan []byte, stop func())
	// ping checks the store answers.
	ping(ctx context.Context) error
	// close releases the backend's connections.
	close() error
}

// ownerToken extracts owner_token from a stored lease value ("" if it has none or does not decode),
// exactly as the Redis scripts do with cjson.
func ownerToken(val []byte) string {
	var v struct {
		OwnerToken string `json:"owner_token"`
	}
	if json.Unmarshal(val, &v) != nil {
		return ""
	}

	return v.OwnerToken
}
