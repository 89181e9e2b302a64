package zkserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// zkJar is Apache ZooKeeper's own jar (the Debian package scripts/services installs):
// its ZooKeeperMain (zkCli) is the reference client.
const zkJar = "/usr/share/java/zookeeper.jar"

// TestJavaClientSeesTheSameAsOnTheEnsemble runs one zkCli script against the embedded
// server and against the real ensemble and compares the outputs, with zxids, times
// and session ids masked.
func TestJavaClientSeesTheSameAsOnTheEnsemble(t *testing.T) {
	java, err := exec.LookPath("java")
	if _, statErr := os.Stat(zkJar); err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("java or %s missing but CI=true (scripts/services installs both)", zkJar)
		}
		t.Skipf("java or %s missing: the reference client cannot run", zkJar)
	}
	srv, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var r [6]byte
	_, _ = rand.Read(r[:])
	base := "/dsctl-zkcli-" + hex.EncodeToString(r[:])
	script := strings.ReplaceAll(`create B
create B/p data
create -s B/p/s- x
create -s B/p/s- x
create -e B/e eph
create -c B/c
create -t 60000 B/t x
create B/p/s-0000000003 taken
create -s B/p/s- x
create -s B/p/s- x
ls B
ls -s B
get -s B/p
set B/p newdata
set -v 0 B/p stale
delete B/p
delete -v 7 B/p/s-0000000000
stat B/missing
create B/missing/x
getAcl B/p
setAcl B/p world:anyone:ra
getAcl -s B/p
create B/p/y
set B/p denied
setAcl -v 0 B/p world:anyone:cdrwa
setAcl -v 1 B/p world:anyone:cdrwa
getAllChildrenNumber B
getEphemerals B
sync B
deleteall B
ls B
quit
`, "B", base)
	run := func(addr string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, java, "-Xmx64m", "-cp", zkJar+":/etc/zookeeper/conf", "org.apache.zookeeper.ZooKeeperMain", "-server", addr)
		cmd.Stdin = strings.NewReader(script)
		// zkCli prints results on stdout and errors on stderr; keep both, in order.
		var buf strings.Builder
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run() // its exit status is the last command's: not checked
		out := buf.String()
		if ctx.Err() != nil {
			t.Fatalf("zkCli against %s: %v\n%s", addr, err, out)
		}
		return normalizeZkCli(string(out), base)
	}
	embedded := run(srv.Addr())
	if !strings.Contains(embedded, "Created B/p/s-0000000000") || !strings.Contains(embedded, "Node already exists: B/p/s-\n") ||
		!strings.Contains(embedded, "Insufficient permission : B/p/y") || !strings.HasSuffix(embedded, "Node does not exist: B") {
		t.Fatalf("zkCli did not run its script against the embedded server:\n%s", embedded)
	}
	addrs := os.Getenv("DSCTL_TEST_ZK")
	if addrs == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("DSCTL_TEST_ZK is not set but CI=true")
		}
		t.Skip("DSCTL_TEST_ZK not set: the embedded half ran, the comparison needs the ensemble")
	}
	ensembleAddr := strings.Split(addrs, ",")[0]
	t.Cleanup(func() {
		c := connect(t, ensembleAddr, 4*time.Second)
		deleteTree(c.Conn, base)
	})
	ensemble := run(ensembleAddr)
	if embedded != ensemble {
		t.Fatalf("zkCli output differs\n--- embedded\n%s\n--- ensemble\n%s", embedded, ensemble)
	}
}

var (
	zkCliHex   = regexp.MustCompile(`0x[0-9a-f]+`)
	zkCliDate  = regexp.MustCompile(`(?m)^([cm]time) = .*$`)
	zkCliNoise = regexp.MustCompile(`^(Connecting to|Welcome to|JLine|WATCHER::|WatchedEvent|SLF4J:|\[main|\[.*Thread)`)
)

func normalizeZkCli(out, base string) string {
	out = strings.ReplaceAll(out, base, "B")
	out = zkCliHex.ReplaceAllString(out, "0xN")
	out = zkCliDate.ReplaceAllString(out, "$1 = DATE")
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !zkCliNoise.MatchString(line) && strings.TrimSpace(line) != "" {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
