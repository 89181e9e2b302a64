package zk

import (
	"context"
	"fmt"
	"sort"
	"time"

	gozk "github.com/go-zookeeper/zk"
)

// Stat is a znode's metadata. Zxids and session ids are 64-bit: JSON carries them as
// hex strings ("0x100000003"), like zkCli prints them.
type Stat struct {
	Czxid          int64     `json:"-"`
	Mzxid          int64     `json:"-"`
	Pzxid          int64     `json:"-"`
	Ctime          time.Time `json:"ctime"`
	Mtime          time.Time `json:"mtime"`
	Version        int32     `json:"version"`
	Cversion       int32     `json:"cversion"`
	Aversion       int32     `json:"aversion"`
	EphemeralOwner int64     `json:"-"`
	DataLength     int32     `json:"data_length"`
	NumChildren    int32     `json:"num_children"`
}

// StatJSON is Stat's JSON form with the 64-bit fields as hex strings.
type StatJSON struct {
	Czxid          string    `json:"czxid"`
	Mzxid          string    `json:"mzxid"`
	Pzxid          string    `json:"pzxid"`
	Ctime          time.Time `json:"ctime"`
	Mtime          time.Time `json:"mtime"`
	Version        int32     `json:"version"`
	Cversion       int32     `json:"cversion"`
	Aversion       int32     `json:"aversion"`
	EphemeralOwner string    `json:"ephemeral_owner"`
	DataLength     int32     `json:"data_length"`
	NumChildren    int32     `json:"num_children"`
}

// JSON returns the JSON form.
func (s Stat) JSON() StatJSON {
	return StatJSON{Czxid: Hex(s.Czxid), Mzxid: Hex(s.Mzxid), Pzxid: Hex(s.Pzxid), Ctime: s.Ctime, Mtime: s.Mtime,
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion, EphemeralOwner: Hex(s.EphemeralOwner),
		DataLength: s.DataLength, NumChildren: s.NumChildren}
}

// Hex formats a zxid or session id as zkCli does.
func Hex(v int64) string { return fmt.Sprintf("0x%x", v) }

func statOf(s *gozk.Stat) Stat {
	if s == nil {
		return Stat{}
	}
	return Stat{Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid,
		Ctime: time.UnixMilli(s.Ctime).UTC(), Mtime: time.UnixMilli(s.Mtime).UTC(),
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion, EphemeralOwner: s.EphemeralOwner,
		DataLength: s.DataLength, NumChildren: s.NumChildren}
}

// Stat reads a node's metadata.
func (c *Client) Stat(ctx context.Context, path string) (Stat, error) {
	if err := CheckPath(path); err != nil {
		return Stat{}, err
	}
	ok, st, err := c.existsRaw(ctx, c.abs(path))
	if err != nil {
		return Stat{}, err
	}
	if !ok {
		return Stat{}, c.classify("stat", path, gozk.ErrNoNode)
	}
	return statOf(st), nil
}

// Exists reports whether a node exists, with its metadata when it does.
func (c *Client) Exists(ctx context.Context, path string) (bool, Stat, error) {
	if err := CheckPath(path); err != nil {
		return false, Stat{}, err
	}
	ok, st, err := c.existsRaw(ctx, c.abs(path))
	if err != nil || !ok {
		return false, Stat{}, err
	}
	return true, statOf(st), nil
}

// Node is a node's data and metadata.
type Node struct {
	Path string
	Data []byte
	Stat Stat
}

// Get reads a node's data and metadata.
func (c *Client) Get(ctx context.Context, path string) (Node, error) {
	if err := CheckPath(path); err != nil {
		return Node{}, err
	}
	type gd struct {
		data []byte
		st   *gozk.Stat
	}
	r, err := call(ctx, c, "get", path, func() (gd, error) {
		data, st, err := c.conn.Get(c.abs(path))
		return gd{data, st}, err
	})
	if err != nil {
		return Node{}, err
	}
	return Node{Path: path, Data: r.data, Stat: statOf(r.st)}, nil
}

// Children lists a node's children, sorted, with the node's metadata.
func (c *Client) Children(ctx context.Context, path string) ([]string, Stat, error) {
	if err := CheckPath(path); err != nil {
		return nil, Stat{}, err
	}
	type ch struct {
		kids []string
		st   *gozk.Stat
	}
	r, err := call(ctx, c, "ls", path, func() (ch, error) {
		kids, st, err := c.conn.Children(c.abs(path))
		return ch{kids, st}, err
	})
	if err != nil {
		return nil, Stat{}, err
	}
	sort.Strings(r.kids)
	return r.kids, statOf(r.st), nil
}

// Set writes a node's data at the expected version (-1 for any), returning the new stat.
func (c *Client) Set(ctx context.Context, path string, data []byte, version int32) (Stat, error) {
	if err := CheckPath(path); err != nil {
		return Stat{}, err
	}
	st, err := call(ctx, c, "set", path, func() (*gozk.Stat, error) { return c.conn.Set(c.abs(path), data, version) })
	if err != nil {
		return Stat{}, err
	}
	return statOf(st), nil
}

// Create makes a node (flags as go-zookeeper's: 0, FlagEphemeral, FlagSequence).
// A nil acl means world:anyone with all permissions.
func (c *Client) Create(ctx context.Context, path string, data []byte, flags int32, acl []gozk.ACL) (string, error) {
	if err := CheckPath(path); err != nil {
		return "", err
	}
	if acl == nil {
		acl = gozk.WorldACL(gozk.PermAll)
	}
	created, err := call(ctx, c, "create", path, func() (string, error) { return c.conn.Create(c.abs(path), data, flags, acl) })
	if err != nil {
		return "", err
	}
	rel, _ := c.rel(created)
	return rel, nil
}

// Delete removes one node at the expected version (-1 for any).
func (c *Client) Delete(ctx context.Context, path string, version int32) error {
	if err := CheckPath(path); err != nil {
		return err
	}
	_, err := call(ctx, c, "delete", path, func() (struct{}, error) { return struct{}{}, c.conn.Delete(c.abs(path), version) })
	return err
}
