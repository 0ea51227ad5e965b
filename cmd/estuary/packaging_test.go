package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root (this package is cmd/estuary).
const repoRoot = "../.."

func repoPath(p string) string {
	return filepath.Join(repoRoot, filepath.FromSlash(strings.TrimPrefix(p, "./")))
}

func requireExists(t *testing.T, p, from string) {
	t.Helper()
	_, err := os.Stat(repoPath(p))
	require.NoError(t, err, "%s names %s, which does not exist", from, p)
}

// TestDockerfile: every file the Dockerfile copies exists, it builds ./cmd/estuary statically
// (CGO_ENABLED=0) and runs as a non-root user, and the configs it ships load.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(repoPath("Dockerfile"))
	require.NoError(t, err)
	text := string(data)
	require.Contains(t, text, "CGO_ENABLED=0")
	require.Contains(t, text, "./cmd/estuary")
	requireExists(t, "cmd/estuary/main.go", "Dockerfile")
	var user string
	var copies int
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "COPY":
			args := f[1:]
			if len(args) > 0 && strings.HasPrefix(args[0], "--from") {
				continue // from the build stage
			}
			for _, src := range args[:len(args)-1] {
				requireExists(t, src, "Dockerfile COPY")
				copies++
				if strings.HasSuffix(src, ".yaml") {
					_, err := Load(repoPath(src), nil)
					require.NoError(t, err, "the image's %s must load", src)
				}
			}
		}
	}
	require.Positive(t, copies)
	require.NotEmpty(t, user, "the final stage sets USER")
	require.NotContains(t, []string{"root", "0", "0:0", "root:root"}, user)
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		NetworkMode string            `yaml:"network_mode"`
		Networks    map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
}

var addrRe = regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+):(\d+)`)

// TestCompose: the reference topology (redis, 3 origins, 3 edges, haproxy, nginx) mounts files that
// exist; each node's config loads with its environment and gets its own node_id; the addresses in
// configs/haproxy.cfg and configs/nginx.conf are nodes of the compose network.
func TestCompose(t *testing.T) {
	data, err := os.ReadFile(repoPath("docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(data, &c))
	for _, want := range []string{"redis", "origin1", "origin2", "origin3", "edge1", "edge2", "edge3", "haproxy", "nginx"} {
		require.Contains(t, c.Services, want)
	}
	ips := map[string]string{} // ip -> service (edges share their origin's)
	for name, s := range c.Services {
		for _, n := range s.Networks {
			if n.IPv4 != "" {
				ips[n.IPv4] = name
			}
		}
	}
	nodeIDs := map[string]bool{}
	for name, s := range c.Services {
		t.Run(name, func(t *testing.T) {
			mounted := map[string]string{} // container path -> host path
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				require.GreaterOrEqual(t, len(parts), 2, v)
				if strings.HasPrefix(parts[0], "./") {
					requireExists(t, parts[0], "docker-compose.yml "+name)
					mounted[parts[1]] = parts[0]
				}
			}
			if !strings.HasPrefix(name, "origin") && !strings.HasPrefix(name, "edge") {
				return
			}
			require.Equal(t, "estuary:latest", s.Image)
			i := slices.Index(s.Command, "-c")
			require.GreaterOrEqual(t, i, 0, "an estuary service names its config")
			host, ok := mounted[s.Command[i+1]]
			require.True(t, ok, "%s is mounted", s.Command[i+1])
			var env []string
			for k, v := range s.Environment {
				env = append(env, k+"="+v)
			}
			cfg, err := Load(repoPath(host), env)
			require.NoError(t, err)
			require.Equal(t, name, cfg.NodeID)
			require.False(t, nodeIDs[cfg.NodeID], "node_id %s twice", cfg.NodeID)
			nodeIDs[cfg.NodeID] = true
			require.Equal(t, strings.TrimRight(name, "123"), cfg.Role)
			require.Equal(t, s.Environment["ESTUARY_CLUSTER_REDIS"], cfg.Cluster.Redis)
			require.Equal(t, "redis", ips[strings.TrimSuffix(strings.TrimPrefix(cfg.Cluster.Redis, "redis://"), ":6379/0")])
			if cfg.Role == "edge" {
				require.Equal(t, "service:origin"+name[len(name)-1:], s.NetworkMode, "edgeN shares hostN with originN")
				require.NotEqual(t, 8000, cfg.WebRTC.UDPPort, "edge and origin on one address need their own media port")
			}
		})
	}
	// Every backend address of haproxy and nginx is a node of the compose network, on a port its config listens on.
	for _, f := range []string{"configs/haproxy.cfg", "configs/nginx.conf"} {
		b, err := os.ReadFile(repoPath(f))
		require.NoError(t, err)
		n := 0
		for _, m := range addrRe.FindAllStringSubmatch(string(b), -1) {
			if strings.HasPrefix(m[1], "0.") || strings.HasPrefix(m[1], "127.") {
				continue
			}
			require.Contains(t, ips, m[1], "%s names %s", f, m[0])
			require.Contains(t, []string{"19350", "8080"}, m[2], "%s names %s", f, m[0])
			n++
		}
		require.GreaterOrEqual(t, n, 3, f)
	}
}

// TestSystemdUnit: the unit starts the binary on a config that exists, reloads with SIGHUP and stops
// with SIGTERM, as a non-root user.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(repoPath("configs/estuary.service"))
	require.NoError(t, err)
	keys := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		keys[k] = v
	}
	exec := strings.Fields(keys["ExecStart"])
	require.GreaterOrEqual(t, len(exec), 3)
	require.Equal(t, "estuary", filepath.Base(exec[0]))
	require.Equal(t, "-c", exec[1])
	requireExists(t, "configs/"+filepath.Base(exec[2]), "configs/estuary.service ExecStart")
	_, err = Load(repoPath("configs/"+filepath.Base(exec[2])), nil)
	require.NoError(t, err)
	require.Contains(t, keys["ExecReload"], "-HUP")
	require.Equal(t, "SIGTERM", keys["KillSignal"])
	require.NotEmpty(t, keys["User"])
	require.NotEqual(t, "root", keys["User"])
}
