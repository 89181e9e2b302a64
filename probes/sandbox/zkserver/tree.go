package zkserver

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode/utf8"
)

// znode is one node of the tree, stored as ZooKeeper's DataNode stores it:
// stat.EphemeralOwner is the raw owner, which also encodes containers and TTL nodes
// (EphemeralType), and stat.Cversion counts the children ever created (it is the next
// sequential suffix). clientStat translates both as DataNode.copyStat does.
type znode struct {
	data     []byte
	acl      []ACL
	stat     Stat
	children map[string]struct{}
}

func (n *znode) clientStat() Stat {
	st := n.stat
	if ephemeralKind(st.EphemeralOwner) != kindEphemeral {
		st.EphemeralOwner = 0
	}
	st.NumChildren = int32(len(n.children))
	st.DataLength = int32(len(n.data))
	// "translate from the count of the creates to the count of the changes": every
	// child created and gone was one create and one delete.
	st.Cversion = 2*n.stat.Cversion - st.NumChildren
	return st
}

const (
	kindPersistent = iota
	kindEphemeral
	kindContainer
	kindTTL
)

func ephemeralKind(owner int64) int {
	switch {
	case owner == 0:
		return kindPersistent
	case owner == containerEphemeralOwner:
		return kindContainer
	case owner&ttlEphemeralOwnerMask == ttlEphemeralOwnerMask:
		return kindTTL
	}
	return kindEphemeral
}

// The nodes ZooKeeper itself owns; they cannot be deleted (DataTree.isSpecialPath).
func isSpecialPath(p string) bool {
	return p == "/" || p == "/zookeeper" || p == "/zookeeper/quota" || p == "/zookeeper/config"
}

// validatePath is ZooKeeper's PathUtils.validatePath: absolute, no trailing slash, no
// empty, "." or ".." components, no control or private-use characters. Java checks
// UTF-16 code units, so characters outside the BMP (surrogates) and invalid UTF-8
// (decoded to U+FFFD) are refused too.
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("path length must be > 0")
	}
	if p[0] != '/' {
		return fmt.Errorf("path must start with / character")
	}
	if len(p) == 1 {
		return nil
	}
	if p[len(p)-1] == '/' {
		return fmt.Errorf("path must not end with / character")
	}
	for _, comp := range strings.Split(p[1:], "/") {
		switch comp {
		case "":
			return fmt.Errorf("empty node name specified")
		case ".", "..":
			return fmt.Errorf("relative paths not allowed")
		}
	}
	for i, r := range p {
		switch {
		case r == utf8.RuneError:
			return fmt.Errorf("invalid character @%d", i)
		case r == 0:
			return fmt.Errorf("null character not allowed @%d", i)
		case r > 0 && r <= 0x1f, r >= 0x7f && r <= 0x9f, r >= 0xd800 && r <= 0xf8ff, r >= 0xfff0:
			return fmt.Errorf("invalid character @%d", i)
		}
	}
	return nil
}

// parentOf splits "/a/b" into "/a" and "b"; the parent of "/a" is "/".
func parentOf(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

// authID is one identity a session has proven (AddAuth) or has by its address.
type authID struct{ Scheme, ID string }

// digestID is what ZooKeeper's DigestAuthenticationProvider stores for user:password.
func digestID(userPass string) string {
	user, _, _ := strings.Cut(userPass, ":")
	sum := sha1.Sum([]byte(userPass))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// allowed is ZooKeeperServer.checkACL: an empty ACL allows everything; otherwise some
// entry granting perm must match world:anyone or one of the session's identities.
func allowed(acl []ACL, perm int32, ids []authID) bool {
	if len(acl) == 0 {
		return true
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		if a.Scheme == "world" && a.ID == "anyone" {
			return true
		}
		for _, id := range ids {
			if id.Scheme != a.Scheme {
				continue
			}
			if id.ID == a.ID || (a.Scheme == "ip" && ipMatches(a.ID, id.ID)) {
				return true
			}
		}
	}
	return false
}

func ipMatches(pattern, addr string) bool {
	ip := net.ParseIP(addr)
	if ip == nil {
		return false
	}
	if _, cidr, err := net.ParseCIDR(pattern); err == nil {
		return cidr.Contains(ip)
	}
	p := net.ParseIP(pattern)
	return p != nil && p.Equal(ip)
}

// fixupACL is PrepRequestProcessor.fixupACL: refuses an empty list or an entry with an
// unknown scheme or malformed id (InvalidACL), and replaces "auth" entries with the
// session's authenticated identities.
func fixupACL(acl []ACL, ids []authID) ([]ACL, Code) {
	if len(acl) == 0 {
		return nil, CodeInvalidACL
	}
	var out []ACL
	add := func(a ACL) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, a := range acl {
		switch a.Scheme {
		case "world":
			if a.ID != "anyone" {
				return nil, CodeInvalidACL
			}
			add(a)
		case "auth":
			found := false
			for _, id := range ids {
				if id.Scheme == "digest" {
					add(ACL{Perms: a.Perms, Scheme: id.Scheme, ID: id.ID})
					found = true
				}
			}
			if !found {
				return nil, CodeInvalidACL
			}
		case "digest":
			if strings.Count(a.ID, ":") != 1 {
				return nil, CodeInvalidACL
			}
			add(a)
		case "ip":
			if net.ParseIP(a.ID) == nil {
				if _, _, err := net.ParseCIDR(a.ID); err != nil {
					return nil, CodeInvalidACL
				}
			}
			add(a)
		default:
			return nil, CodeInvalidACL
		}
	}
	return out, CodeOK
}
