package zkserver

import (
	"encoding/binary"
	"errors"
	"math"
)

// errMarshal is a request that does not decode: ZooKeeper closes such a connection.
var errMarshal = errors.New("zkserver: malformed request")

// reader decodes jute, ZooKeeper's big-endian record format: ints, longs, booleans as
// one byte, strings and buffers as an int length (-1 for null) and bytes, vectors as
// an int count (-1 for null) and elements.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errMarshal
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) int() int32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *reader) long() int64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *reader) bool() bool {
	b := r.take(1)
	return b != nil && b[0] != 0
}

func (r *reader) buffer() []byte {
	n := r.int()
	if n == -1 || r.err != nil {
		return nil
	}
	b := r.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (r *reader) string() string { return string(r.buffer()) }

// count reads a vector length; -1 (null) is an empty vector. A count larger than the
// bytes left cannot be honest and fails the decode.
func (r *reader) count() int {
	n := r.int()
	if r.err != nil || n == -1 {
		return 0
	}
	if n < 0 || int(n) > len(r.b) {
		r.err = errMarshal
		return 0
	}
	return int(n)
}

func (r *reader) strings() []string {
	n := r.count()
	out := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.string())
	}
	return out
}

func (r *reader) acls() []ACL {
	n := r.count()
	out := make([]ACL, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		perms := r.int()
		scheme := r.string()
		id := r.string()
		out = append(out, ACL{Perms: perms, Scheme: scheme, ID: id})
	}
	return out
}

// writer encodes jute into a growing buffer.
type writer struct{ b []byte }

func (w *writer) int(v int32) { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }

func (w *writer) long(v int64) { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }

func (w *writer) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// buffer writes a byte buffer, null as length -1: ZooKeeper keeps a node created with
// null data as null and returns it so (go-zookeeper reads it as a nil slice).
func (w *writer) buffer(b []byte, null bool) {
	if null {
		w.int(-1)
		return
	}
	if len(b) > math.MaxInt32 {
		b = b[:math.MaxInt32]
	}
	w.int(int32(len(b)))
	w.b = append(w.b, b...)
}

func (w *writer) string(s string) {
	w.int(int32(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) strings(list []string) {
	w.int(int32(len(list)))
	for _, s := range list {
		w.string(s)
	}
}

func (w *writer) acls(list []ACL) {
	w.int(int32(len(list)))
	for _, a := range list {
		w.int(a.Perms)
		w.string(a.Scheme)
		w.string(a.ID)
	}
}

func (w *writer) stat(s Stat) {
	w.long(s.Czxid)
	w.long(s.Mzxid)
	w.long(s.Ctime)
	w.long(s.Mtime)
	w.int(s.Version)
	w.int(s.Cversion)
	w.int(s.Aversion)
	w.long(s.EphemeralOwner)
	w.int(s.DataLength)
	w.int(s.NumChildren)
	w.long(s.Pzxid)
}
