package cascade

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var redisURLCases = []struct {
	name     string
	url      string
	ok       bool
	addrs    []string
	user     string
	password string
	db       int
	tls      bool
	master   string
	sentPass string
}{
	{name: "plain", url: "redis://127.0.0.1:6379", ok: true, addrs: []string{"127.0.0.1:6379"}},
	{name: "default port", url: "redis://redis.internal", ok: true, addrs: []string{"redis.internal:6379"}},
	{name: "password and db", url: "redis://:s3cret@10.0.0.5:6380/2", ok: true, addrs: []string{"10.0.0.5:6380"}, password: "s3cret", db: 2},
	{name: "user password", url: "redis://estuary:pw@h:1/0", ok: true, addrs: []string{"h:1"}, user: "estuary", password: "pw"},
	{name: "tls", url: "rediss://:pw@cache.example:6380/1", ok: true, addrs: []string{"cache.example:6380"}, password: "pw", db: 1, tls: true},
	{name: "ipv6", url: "redis://[::1]:6379/0", ok: true, addrs: []string{"[::1]:6379"}},
	{name: "query options", url: "redis://h:1/0?dial_timeout=3s&max_retries=2", ok: true, addrs: []string{"h:1"}},
	{
		name: "sentinel", url: "redis://:pass@s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379", ok: true,
		addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, password: "pass", master: "mymaster", sentPass: "pass",
	},
	{
		name: "sentinel own master password", url: "redis://:sentpw@s1:26379/3?master_name=m&password=masterpw", ok: true,
		addrs: []string{"s1:26379"}, password: "masterpw", db: 3, master: "m", sentPass: "sentpw",
	},
	{name: "sentinel tls", url: "rediss://s1:26379/0?master_name=m", ok: true, addrs: []string{"s1:26379"}, master: "m", tls: true},
	{name: "sentinel empty master", url: "redis://s1:26379/0?master_name=", ok: false},
	{name: "sentinel bad addr", url: "redis://s1:26379/0?master_name=m&addr=nohost", ok: false},
	{name: "http scheme", url: "http://127.0.0.1:6379", ok: false},
	{name: "unix scheme", url: "unix:///tmp/redis.sock", ok: false},
	{name: "no scheme", url: "127.0.0.1:6379", ok: false},
	{name: "bad db", url: "redis://h:1/abc", ok: false},
	{name: "bad path", url: "redis://h:1/0/1", ok: false},
	{name: "unknown option", url: "redis://h:1/0?bogus=1", ok: false},
	{name: "empty", url: "", ok: false},
}

func TestParseRedisURL(t *testing.T) {
	for _, tc := range redisURLCases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseRedisURL(tc.url)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidConfig)

				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.addrs, o.Addrs)
			require.Equal(t, tc.user, o.Username)
			require.Equal(t, tc.password, o.Password)
			require.Equal(t, tc.db, o.DB)
			require.Equal(t, tc.tls, o.TLSConfig != nil)
			require.Equal(t, tc.master, o.MasterName)
			require.Equal(t, tc.sentPass, o.SentinelPassword)
			if tc.tls {
				require.NotEmpty(t, o.TLSConfig.ServerName)
			}
		})
	}
}

func FuzzParseRedisURL(f *testing.F) {
	for _, tc := range redisURLCases {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseRedisURL(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidConfig)

			return
		}
		require.NotEmpty(t, o.Addrs)
		for _, a := range o.Addrs {
			require.NotEmpty(t, a)
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	require.NoError(t, err)
	require.True(t, ValidNodeID(cfg.NodeID), cfg.NodeID)
	require.Equal(t, RoleStandalone, cfg.Role)
	require.Equal(t, 3*time.Second, cfg.NodeTTL)
	require.Equal(t, 6*time.Second, cfg.LeaseTTL)
	require.Equal(t, 2*time.Second, cfg.LeaseRefresh)
	require.False(t, cfg.Takeover)
	require.Empty(t, cfg.relayURL("live/test"))

	cfg, err = Config{NodeID: "o1", Role: RoleOrigin, Advertise: "http://10.0.0.1:9090/", NodeTTL: time.Second}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.1:9090/relay/v1/live/test", cfg.relayURL("live/test"))
	require.Equal(t, time.Second, cfg.NodeTTL)

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"bad node id", Config{NodeID: "a b"}},
		{"bad role", Config{Role: "primary"}},
		{"bad advertise", Config{Advertise: "10.0.0.1:9090"}},
		{"refresh not shorter than TTL", Config{LeaseTTL: time.Second, LeaseRefresh: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.withDefaults()
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	_, err = NewRedis(RedisConfig{URL: "http://x"}, Deps{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewRedis(RedisConfig{}, Deps{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}
