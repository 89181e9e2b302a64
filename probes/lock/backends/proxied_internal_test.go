package backends

import (
	"testing"

	"github.com/dsctl/dsctl/probes/endpoint"
)

func TestProxiedRedisKeepsSchemeCredentialsAndServerName(t *testing.T) {
	cases := []struct {
		name       string
		ep         endpoint.Redis
		proxied    []string
		wantAddrs  []string
		wantServer string
	}{
		{"host:port", endpoint.Redis{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379"}},
			[]string{"127.0.0.1:4001", "127.0.0.1:4002"}, []string{"127.0.0.1:4001", "127.0.0.1:4002"}, ""},
		{"url with user, password and db", endpoint.Redis{Addrs: []string{"redis://app:s3cret@cache.internal:6380/2"}},
			[]string{"127.0.0.1:4001"}, []string{"redis://app:s3cret@127.0.0.1:4001/2"}, ""},
		{"rediss verifies the real name", endpoint.Redis{Addrs: []string{"rediss://cache.internal:6380"}},
			[]string{"127.0.0.1:4001"}, []string{"rediss://127.0.0.1:4001"}, "cache.internal"},
		{"context TLS keeps an explicit name", endpoint.Redis{Addrs: []string{"cache.internal:6380"}, TLS: &endpoint.TLS{Enabled: true, ServerName: "redis.example"}},
			[]string{"127.0.0.1:4001"}, []string{"127.0.0.1:4001"}, "redis.example"},
		{"context TLS without a name gets the host's", endpoint.Redis{Addrs: []string{"cache.internal:6380"}, TLS: &endpoint.TLS{Enabled: true}},
			[]string{"127.0.0.1:4001"}, []string{"127.0.0.1:4001"}, "cache.internal"},
	}
	for _, c := range cases {
		got := proxiedRedis(c.ep, c.proxied)
		if len(got.Addrs) != len(c.wantAddrs) {
			t.Fatalf("%s: addrs %v", c.name, got.Addrs)
		}
		for i := range got.Addrs {
			if got.Addrs[i] != c.wantAddrs[i] {
				t.Errorf("%s: addr %d = %q, want %q", c.name, i, got.Addrs[i], c.wantAddrs[i])
			}
		}
		server := ""
		if got.TLS != nil {
			server = got.TLS.ServerName
		}
		if server != c.wantServer {
			t.Errorf("%s: TLS server name %q, want %q", c.name, server, c.wantServer)
		}
		if len(c.ep.Addrs) > 0 && c.ep.Addrs[0] == got.Addrs[0] && c.ep.Addrs[0] != c.proxied[0] {
			t.Errorf("%s: the caller's endpoint was changed", c.name)
		}
	}
}
