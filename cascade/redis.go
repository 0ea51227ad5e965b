package cascade

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lua scripts: each runs atomically in Redis. They compare owner_token with cjson (a value that does not
// decode as a JSON object is nobody's), exactly as memoryBackend does with ownerToken.
var (
	// KEYS[1] lease key; ARGV[1] owner token, ARGV[2] full value, ARGV[3] TTL ms.
	// Returns {1} refreshed, {2} re-taken (was absent), {0, holder value} held by another owner.
	refreshScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return {2}
end
local ok, r = pcall(cjson.decode, v)
if ok and type(r) == 'table' and r['owner_token'] == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1}
end
return {0, v}
`)
	// KEYS[1] lease key; ARGV[1] owner token. Returns 1 if deleted.
	releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if ok and type(r) == 'table' and r['owner_token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
	// KEYS[1] key; ARGV[1] expected old value, ARGV[2] new value, ARGV[3] TTL ms. Returns 1 if replaced.
	replaceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)
	// KEYS[1] key; ARGV[1] expected value. Deletes it if equal.
	deleteIfScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
)

// redisBackend is a backend on Redis (a single server or a Sentinel-managed master).
type redisBackend struct {
	c redis.UniversalClient
}

var _ backend = (*redisBackend)(nil)

// newRedisBackend connects lazily: nothing here waits for Redis.
func newRedisBackend(rawURL string, opTimeout time.Duration) (*redisBackend, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: cluster.redis is required", ErrInvalidConfig)
	}
	o, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = opTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = opTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = opTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true // no CLIENT SETINFO (older servers log errors for it)

	return &redisBackend{c: redis.NewUniversalClient(o)}, nil
}

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

func (b *redisBackend) setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := b.c.SetNX(ctx, key, val, ttl).Result() // SET key val PX ttl NX
	if err != nil {
		return false, fmt.Errorf("redis SET NX %s: %w", key, err)
	}

	return ok, nil
}

func (b *redisBackend) get(ctx context.Context, key string) ([]byte, error) {
	v, err := b.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis GET %s: %w", key, err)
	}

	return v, nil
}

func (b *redisBackend) replace(ctx context.Context, key string, old, val []byte, ttl time.Duration) (bool, error) {
	n, err := replaceScript.Run(ctx, b.c, []string{key}, old, val, ms(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("redis replace %s: %w", key, err)
	}

	return n == 1, nil
}

func (b *redisBackend) refresh(ctx context.Context, key, token string, val []byte, ttl time.Duration) (refreshResult, []byte, error) {
	res, err := refreshScript.Run(ctx, b.c, []string{key}, token, val, ms(ttl)).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("redis refresh %s: %w", key, err)
	}
	if len(res) == 0 {
		return 0, nil, fmt.Errorf("redis refresh %s: empty reply", key)
	}
	code, _ := res[0].(int64)
	switch code {
	case 1:
		return refreshOK, nil, nil
	case 2:
		return refreshRetaken, nil, nil
	}
	var holder []byte
	if len(res) > 1 {
		if s, ok := res[1].(string); ok {
			holder = []byte(s)
		}
	}

	return refreshLost, holder, nil
}

func (b *redisBackend) release(ctx context.Context, key, token string) (bool, error) {
	n, err := releaseScript.Run(ctx, b.c, []string{key}, token).Int()
	if err != nil {
		return false, fmt.Errorf("redis release %s: %w", key, err)
	}

	return n == 1, nil
}

func (b *redisBackend) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := b.c.Set(ctx, key, val, ttl).Err(); err != nil {
		return fmt.Errorf("redis SET %s: %w", key, err)
	}

	return nil
}

func (b *redisBackend) deleteIf(ctx context.Context, key string, val []byte) error {
	if err := deleteIfScript.Run(ctx, b.c, []string{key}, val).Err(); err != nil {
		return fmt.Errorf("redis delete %s: %w", key, err)
	}

	return nil
}

// scanBatch is the SCAN COUNT hint and the MGET batch size.
const scanBatch = 256

func (b *redisBackend) scan(ctx context.Context, prefix string) ([][]byte, error) {
	var keys []string
	iter := b.c.Scan(ctx, 0, prefix+"*", scanBatch).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("redis SCAN %s*: %w", prefix, err)
	}
	out := make([][]byte, 0, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), scanBatch)
		vals, err := b.c.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis MGET: %w", err)
		}
		for _, v := range vals {
			if s, ok := v.(string); ok { // nil: expired between SCAN and MGET
				out = append(out, []byte(s))
			}
		}
		keys = keys[n:]
	}

	return out, nil
}

func (b *redisBackend) publish(ctx context.Context, msg []byte) error {
	if err := b.c.Publish(ctx, EventsChannel, msg).Err(); err != nil {
		return fmt.Errorf("redis PUBLISH: %w", err)
	}

	return nil
}

// subscribe forwards EventsChannel's messages; go-redis reconnects and resubscribes by itself after an
// outage (announcements sent meanwhile are lost: WaitFor's safety poll covers them).
func (b *redisBackend) subscribe() (<-chan []byte, func()) {
	ps := b.c.Subscribe(context.Background(), EventsChannel)
	out := make(chan []byte, memorySubBuffer)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		in := ps.Channel(redis.WithChannelSize(memorySubBuffer))
		for {
			select {
			case <-done:
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- []byte(m.Payload):
				case <-done:
					return
				}
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			_ = ps.Close()
			wg.Wait()
		})
	}

	return out, stop
}

func (b *redisBackend) ping(ctx context.Context) error {
	if err := b.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis PING: %w", err)
	}

	return nil
}

func (b *redisBackend) close() error { return b.c.Close() }
