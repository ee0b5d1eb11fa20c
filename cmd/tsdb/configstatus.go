package main

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/web"
)

// configStatus remembers the config file as last loaded, for
// /api/v1/status/config and runtimeinfo.
type configStatus struct {
	path    string
	started time.Time
	mu      sync.Mutex
	yaml    string
	ok      bool
	at      time.Time
}

// loaded records a load or reload of the config file: on success its text,
// secrets hidden, becomes what the status endpoint shows.
func (c *configStatus) loaded(err error) {
	text := ""
	if err == nil && c.path != "" {
		if b, rerr := os.ReadFile(c.path); rerr == nil {
			text = redactConfig(b)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok, c.at = err == nil, time.Now()
	if err == nil {
		c.yaml = text
	}
}

func (c *configStatus) config() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.yaml
}

func (c *configStatus) runtime(retention time.Duration) func() web.RuntimeInfo {
	return func() web.RuntimeInfo {
		c.mu.Lock()
		defer c.mu.Unlock()
		r := "unlimited"
		if retention > 0 {
			r = retention.String()
		}
		return web.RuntimeInfo{StartTime: c.started, ReloadConfigSuccess: c.ok, LastConfigTime: c.at, StorageRetention: r}
	}
}

// secretKey matches the config keys whose values are secrets: passwords,
// tokens and their hashes, keys, communities, shared secrets.
var secretKey = regexp.MustCompile(`(?i)(pass|secret|token|community|routing_key|api_key|credential|authorization|bearer)`)

// redactConfig returns the YAML of a config file with the value of every
// secret-looking key replaced by <secret> and credentials removed from
// URLs. A file that does not parse is shown as nothing rather than raw.
func redactConfig(b []byte) string {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return ""
	}
	redactNode(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return ""
	}
	return string(out)
}

func redactNode(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if secretKey.MatchString(k.Value) && !strings.HasSuffix(k.Value, "_file") {
				hide(v)
				continue
			}
			redactNode(v)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "://") && strings.Contains(n.Value, "@") {
		if u, err := url.Parse(n.Value); err == nil && u.User != nil {
			u.User = url.User("<secret>")
			n.Value = u.String()
		}
	}
	for _, c := range n.Content {
		redactNode(c)
	}
}

// hide replaces every scalar under n with <secret>, keeping the shape (a
// list of secrets stays a list).
func hide(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		n.Value, n.Tag, n.Style = "<secret>", "!!str", 0
		return
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // keys stay
		}
		hide(c)
	}
}
