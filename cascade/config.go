package cascade

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a registry (both implementations). The zero value is valid: every field documents
// its default.
type Config struct {
	// NodeID is this node's id (top-level `node_id`), unique in the cluster, [A-Za-z0-9_.-]+.
	// Default: the host name (characters outside that set replaced by '-').
	NodeID string
	// Role is RoleStandalone, RoleOrigin or RoleEdge (top-level `role`). Default RoleStandalone.
	Role string
	// Advertise is this node's HTTP URL as other nodes reach it (cluster.advertise), e.g.
	// "http://10.0.0.5:9090". A lease's relay_url is Advertise + "/relay/v1/{app}/{stream}". Default "".
	Advertise string
	// NodeTTL is the node record's TTL (cluster.node_ttl), refreshed every third of it. Default 3s.
	NodeTTL time.Duration
	// LeaseTTL is a stream lease's TTL. Default 6s.
	LeaseTTL time.Duration
	// LeaseRefresh is how often the owner refreshes its leases. Default LeaseTTL/3 (2s).
	LeaseRefresh time.Duration
	// Takeover (cluster.takeover) overwrites a lease held by a live node instead of refusing the
	// publish; the old owner's lease then reports lost within one refresh period. Default off.
	Takeover bool
	// OpTimeout bounds each registry operation's I/O (one Acquire, Lookup, refresh round...).
	// Default 2s.
	OpTimeout time.Duration
	// SafetyPoll is how often WaitFor looks the key up again in case an announcement was missed.
	// Default 1s.
	SafetyPoll time.Duration
	// ErrorLogInterval rate-limits the logging of refresh errors during an outage. Default 10s.
	ErrorLogInterval time.Duration
}

// RedisConfig configures NewRedis.
type RedisConfig struct {
	Config
	// URL is cluster.redis: "redis://[user:pass@]host:port[/db]", "rediss://..." (TLS) or, for Sentinel,
	// go-redis's failover URL "redis://:pass@sentinel1:port/0?master_name=NAME&addr=sentinel2:port".
	// Required.
	URL string
}

// Deps are a registry's collaborators. All optional.
type Deps struct {
	Logger *slog.Logger
	// Memory is the shared in-process store NewMemory uses; nil means a private one. Registries
	// sharing one MemoryStore behave as nodes of one cluster (tests).
	Memory *MemoryStore
}

// withDefaults returns cfg with defaults applied and validated.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.NodeID == "" {
		cfg.NodeID = hostNodeID()
	}
	if !ValidNodeID(cfg.NodeID) {
		return cfg, fmt.Errorf("%w: node_id %q: want 1-128 characters of [A-Za-z0-9_.-]", ErrInvalidConfig, cfg.NodeID)
	}
	if cfg.Role == "" {
		cfg.Role = RoleStandalone
	}
	if cfg.Role != RoleStandalone && cfg.Role != RoleOrigin && cfg.Role != RoleEdge {
		return cfg, fmt.Errorf("%w: role %q", ErrInvalidConfig, cfg.Role)
	}
	cfg.Advertise = strings.TrimRight(cfg.Advertise, "/")
	if !validURL(cfg.Advertise) {
		return cfg, fmt.Errorf("%w: advertise %q: want an http(s) URL", ErrInvalidConfig, cfg.Advertise)
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = 3 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 6 * time.Second
	}
	if cfg.LeaseRefresh <= 0 {
		cfg.LeaseRefresh = cfg.LeaseTTL / 3
	}
	if cfg.LeaseRefresh >= cfg.LeaseTTL {
		return cfg, fmt.Errorf("%w: lease refresh %s must be shorter than the lease TTL %s", ErrInvalidConfig, cfg.LeaseRefresh, cfg.LeaseTTL)
	}
	if cfg.NodeTTL < 3*time.Millisecond || cfg.LeaseTTL < time.Millisecond {
		return cfg, fmt.Errorf("%w: TTLs too short", ErrInvalidConfig)
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 2 * time.Second
	}
	if cfg.SafetyPoll <= 0 {
		cfg.SafetyPoll = time.Second
	}
	if cfg.ErrorLogInterval <= 0 {
		cfg.ErrorLogInterval = 10 * time.Second
	}

	return cfg, nil
}

// relayURL is where other nodes pull key from this node ("" without Advertise).
func (cfg Config) relayURL(key string) string {
	if cfg.Advertise == "" {
		return ""
	}

	return cfg.Advertise + "/relay/v1/" + key
}

// hostNodeID is the host name made into a valid node id.
func hostNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "estuary"
	}
	b := []byte(h)
	for i, c := range b {
		if !ValidNodeID(string(c)) {
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	if !ValidNodeID(string(b)) {
		return "estuary"
	}

	return string(b)
}

// ParseRedisURL parses cluster.redis into go-redis universal options: a plain client for
// "redis://" and "rediss://" URLs, a Sentinel failover client when the query has master_name. In a
// Sentinel URL the user info authenticates to the sentinels and, unless the query sets username/password,
// to the master too (the usual deployment shares one password).
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster.redis: %w", ErrInvalidConfig, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("%w: cluster.redis: scheme %q: want redis:// or rediss://", ErrInvalidConfig, u.Scheme)
	}
	if u.Query().Has("master_name") {
		fo, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: cluster.redis (sentinel): %w", ErrInvalidConfig, err)
		}
		if fo.MasterName == "" {
			return nil, fmt.Errorf("%w: cluster.redis: empty master_name", ErrInvalidConfig)
		}
		if fo.Password == "" {
			fo.Username, fo.Password = fo.SentinelUsername, fo.SentinelPassword
		}
		uo := &redis.UniversalOptions{
			Addrs:            fo.SentinelAddrs,
			MasterName:       fo.MasterName,
			SentinelUsername: fo.SentinelUsername,
			SentinelPassword: fo.SentinelPassword,
			Username:         fo.Username,
			Password:         fo.Password,
			DB:               fo.DB,
			TLSConfig:        fo.TLSConfig,
			DialTimeout:      fo.DialTimeout,
			ReadTimeout:      fo.ReadTimeout,
			WriteTimeout:     fo.WriteTimeout,
			MaxRetries:       fo.MaxRetries,
			PoolSize:         fo.PoolSize,
			ClientName:       fo.ClientName,
		}

		return uo, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster.redis: %w", ErrInvalidConfig, err)
	}
	uo := &redis.UniversalOptions{
		Addrs:        []string{o.Addr},
		Username:     o.Username,
		Password:     o.Password,
		DB:           o.DB,
		TLSConfig:    o.TLSConfig,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
		MaxRetries:   o.MaxRetries,
		PoolSize:     o.PoolSize,
		ClientName:   o.ClientName,
	}

	return uo, nil
}
