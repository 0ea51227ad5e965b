package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// HookRequest is the JSON body of an SRS-compatible http hook call.
type HookRequest struct {
	Action    string `json:"action"` // on_publish, on_unpublish, on_play, on_stop
	ClientID  string `json:"client_id"`
	IP        string `json:"ip"`
	Vhost     string `json:"vhost"`
	App       string `json:"app"`
	Stream    string `json:"stream"`
	Param     string `json:"param"`
	StreamURL string `json:"stream_url"`
	StreamID  string `json:"stream_id"`
	ServerID  string `json:"server_id"`
	Protocol  string `json:"protocol,omitempty"`
}

// maxHookBody bounds the hook answer read.
const maxHookBody = 64 << 10

func newHookRequest(action string, r sfu.AuthRequest, serverID string) HookRequest {
	app, stream, _ := strings.Cut(r.Key, "/")
	param := r.Param
	if param != "" && !strings.HasPrefix(param, "?") {
		param = "?" + param
	}
	return HookRequest{
		Action: action, ClientID: r.ClientID, IP: r.ClientIP, Vhost: "__defaultVhost__",
		App: app, Stream: stream, Param: param, StreamURL: "/" + r.Key, StreamID: r.Key,
		ServerID: serverID, Protocol: r.Protocol,
	}
}

// HookAllows reports whether a hook's answer allows: HTTP 200 with body "0" or a JSON object whose
// "code" is 0.
func HookAllows(status int, body []byte) bool {
	if status != http.StatusOK {
		return false
	}
	b := bytes.TrimSpace(body)
	if string(b) == "0" {
		return true
	}
	var v map[string]json.RawMessage // exact key "code" (struct tags match case-insensitively)
	if err := json.Unmarshal(b, &v); err != nil {
		return false
	}
	return string(bytes.TrimSpace(v["code"])) == "0" // the number 0, not "0" nor 0.0
}

func (a *Authorizer) callHook(ctx context.Context, cfg *Config, url, action string, r sfu.AuthRequest) error {
	body, err := json.Marshal(newHookRequest(action, r, cfg.ServerID))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHookDenied, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHookDenied, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHookDenied, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, maxHookBody))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHookDenied, err)
	}
	if !HookAllows(resp.StatusCode, ans) {
		return fmt.Errorf("%w: %s answered %d %q", ErrHookDenied, action, resp.StatusCode, truncate(string(ans), 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
