package ring

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"testing"
)

// Published libketama vectors (github.com/RJ/ketama):
//   - libketama/test.sh runs ketama_test over ketama.servers and checks the md5 of its
//     output: an empty error line, then "hash point server" for the keys "0".."999999".
//     Matching that md5 means we agree with libketama key for key on a million keys.
//   - python_ketama/tests.py: hashi("test") == 3446378249 and, with servers
//     127.0.0.1:11211 (600) and 127.0.0.1:11212 (400), get_server("test") ==
//     (3454255383, "127.0.0.1:11211") from a continuum of 320 points.
var ketamaServers = []Node{
	{"10.0.1.1:11211", 600}, {"10.0.1.2:11211", 300}, {"10.0.1.3:11211", 200},
	{"10.0.1.4:11211", 350}, {"10.0.1.5:11211", 1000}, {"10.0.1.6:11211", 800},
	{"10.0.1.7:11211", 950}, {"10.0.1.8:11211", 100},
}

func ketamaRing(t testing.TB, nodes []Node) *hashRing {
	t.Helper()
	l, err := newLayout(nodes, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := buildKetama(l.before)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKetamaMatchesLibketamaTestSh(t *testing.T) {
	r := ketamaRing(t, ketamaServers)
	d := md5.New()
	d.Write([]byte("\n"))
	var line, key []byte
	for i := range 1000000 {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		h := ketamaHash(key)
		p := r.find(h)
		line = strconv.AppendUint(line[:0], h, 10)
		line = append(line, ' ')
		line = strconv.AppendUint(line, r.points[p], 10)
		line = append(line, ' ')
		line = append(line, ketamaServers[r.nodeOf[p]].Name...)
		line = append(line, '\n')
		d.Write(line)
	}
	if got := hex.EncodeToString(d.Sum(nil)); got != "5672b131391f5aa2b280936aec1eea74" {
		t.Fatalf("md5 of ketama_test output = %s, libketama's test.sh expects 5672b131391f5aa2b280936aec1eea74", got)
	}
}
