package zkserver

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofrs/uuid/v5"
)

// DemoOptions tune SeedDemo.
type DemoOptions struct {
	// ConfigInterval is how often the demo config node changes (5s by default).
	ConfigInterval time.Duration
}

// Demo describes the seeded tree, for printing.
type Demo struct {
	Services   map[string][]string `json:"services"`    // service -> its ephemeral member nodes
	ConfigPath string              `json:"config_path"` // changes every ConfigInterval
	LockPath   string              `json:"lock_path"`   // Curator-style lock queue, holder first
	LockQueue  []string            `json:"lock_queue"`
	SessionID  int64               `json:"-"`
}

// Demo tree paths.
const (
	DemoServicesPath = "/services"
	DemoConfigPath   = "/config/checkout/settings"
	DemoLockPath     = "/dsctl/locks/orders"
)

var demoServices = []struct {
	name    string
	members []string
}{
	{"checkout", []string{"10.0.1.11:8080", "10.0.1.12:8080", "10.0.1.13:8080"}},
	{"search", []string{"10.0.2.21:9200", "10.0.2.22:9200"}},
}

// SeedDemo creates the demo tree through the same transactions clients use, owned by
// an internal session that never expires (its ephemerals live until Close):
//
//	/services/<svc>/members/member-<seq>   ephemeral-sequential, {"host","port"} JSON
//	/config/checkout/settings              JSON; setData every ConfigInterval
//	/config/checkout/feature-flags         JSON, static
//	/dsctl/locks/orders/_c_<uuid>-lock-<seq>  three ephemeral-sequential nodes, as
//	                                       Curator's InterProcessMutex makes them
//	                                       (the lowest holds, the others wait)
//
// It can be called once per server.
func (s *Server) SeedDemo(opt DemoOptions) (*Demo, error) {
	if opt.ConfigInterval <= 0 {
		opt.ConfigInterval = 5 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("zkserver: server closed")
	}
	if s.nodes[DemoConfigPath] != nil {
		return nil, fmt.Errorf("zkserver: demo tree already seeded")
	}
	ss := s.newSession(0)
	ss.internal = true
	d := &Demo{Services: map[string][]string{}, ConfigPath: DemoConfigPath, LockPath: DemoLockPath, SessionID: ss.id}
	create := func(path string, data []byte, flags int32) (string, error) {
		t := s.begin()
		p, _, code := t.create(ss, nil, createReq{path: path, data: data, acl: WorldACL, flags: flags, ttl: -1})
		s.finish(t, code)
		if code != CodeOK && code != CodeNodeExists {
			return "", fmt.Errorf("zkserver: seed %s: %v", path, code)
		}
		return p, nil
	}
	mkdirs := func(path string) error {
		for i := 1; i <= len(path); i++ {
			if i == len(path) || path[i] == '/' {
				if _, err := create(path[:i], nil, flagPersistent); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, svc := range demoServices {
		dir := DemoServicesPath + "/" + svc.name + "/members"
		if err := mkdirs(dir); err != nil {
			return nil, err
		}
		for _, m := range svc.members {
			host, port := splitHostPort(m)
			data, _ := json.Marshal(map[string]any{"host": host, "port": port, "service": svc.name})
			p, err := create(dir+"/member-", data, flagEphemeralSequential)
			if err != nil {
				return nil, err
			}
			d.Services[svc.name] = append(d.Services[svc.name], p)
		}
	}
	if err := mkdirs("/config/checkout"); err != nil {
		return nil, err
	}
	if _, err := create("/config/checkout/feature-flags", []byte(`{"new_checkout_flow":true,"dark_mode":false}`), flagPersistent); err != nil {
		return nil, err
	}
	if _, err := create(DemoConfigPath, demoConfig(0), flagPersistent); err != nil {
		return nil, err
	}
	if err := mkdirs(DemoLockPath); err != nil {
		return nil, err
	}
	for _, owner := range []string{"10.0.1.11", "10.0.1.12", "10.0.1.13"} {
		id := uuid.Must(uuid.NewV4()).String()
		p, err := create(fmt.Sprintf("%s/_c_%s-lock-", DemoLockPath, id), []byte(owner), flagEphemeralSequential)
		if err != nil {
			return nil, err
		}
		d.LockQueue = append(d.LockQueue, p) // created in order: ascending sequence
	}
	s.wg.Add(1)
	rev := 0
	go s.everyTick(opt.ConfigInterval, func(time.Time) { // rewrite the config node until Close
		rev++
		tx := s.begin()
		_, code := tx.setData(ss, nil, DemoConfigPath, demoConfig(rev), -1)
		s.finish(tx, code)
	})
	return d, nil
}

func splitHostPort(hp string) (string, int) {
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			port := 0
			fmt.Sscanf(hp[i+1:], "%d", &port)
			return hp[:i], port
		}
	}
	return hp, 0
}

func demoConfig(rev int) []byte {
	b, _ := json.Marshal(map[string]any{"revision": rev, "max_connections": 100 + rev%5*10, "timeout_ms": 250 + rev%3*50})
	return b
}
