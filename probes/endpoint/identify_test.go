package endpoint

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/testenv"
)

// silentServer accepts connections and closes them without a word, as a Kafka or
// ZooKeeper port does with a Redis PING.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func pingRedisAt(t *testing.T, addr string) error {
	t.Helper()
	d := Dialer{Timeout: 2 * time.Second}
	_, err := d.ConnectRedis(context.Background(), Redis{Addrs: []string{addr}})
	return err
}

// --redis pointed at another kind of server says what answered, as an unreachable
// backend (exit 6), instead of a RESP parser error (exit 1) or "cannot reach".
func TestRedisAtWrongServer(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<!DOCTYPE HTML>\n<html></html>"))
	}))
	defer web.Close()
	cases := []struct {
		name, addr, want string
	}{
		{"http", strings.TrimPrefix(web.URL, "http://"), "is not a Redis server: it answered like HTTP"},
		{"silent", silentServer(t), "is not a Redis server: it accepted the connection and closed it without answering"},
	}
	for _, c := range cases {
		err := pingRedisAt(t, c.addr)
		if err == nil || errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), c.want) ||
			strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "invalid reply") {
			t.Errorf("%s: %v (kind %v)", c.name, err, errs.KindOf(err))
		}
	}
}

func TestRedisAtRealKafkaPort(t *testing.T) {
	broker := testenv.List(t, testenv.Kafka)[0]
	err := pingRedisAt(t, broker)
	if err == nil || errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), broker+" is not a Redis server") {
		t.Fatalf("%v", err)
	}
}

func TestClassifyAnswer(t *testing.T) {
	cases := map[string]string{
		"+PONG\r\n":                    AnsweredRedis,
		"-NOAUTH Authentication\r\n":   AnsweredRedis,
		"HTTP/1.1 400 Bad Request\r\n": AnsweredHTTP,
		"<!DOCTYPE html><html>":        AnsweredHTTP,
		"\x15\x03\x01\x00\x02\x02\x46": AnsweredTLS,
		"SSH-2.0-OpenSSH_9.2\r\n":      AnsweredSSH,
		"\x4a\x00\x00\x00\x0a10.11.6":  AnsweredMySQL,
		"\x00\x01\x02":                 AnsweredUnknown,
	}
	for in, want := range cases {
		if got := classifyAnswer([]byte(in)); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

// Kafka and ZooKeeper clients pointed at another kind of server say what answered too.
func TestKafkaAndZooKeeperAtWrongServer(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer web.Close()
	webAddr := strings.TrimPrefix(web.URL, "http://")
	d := Dialer{Timeout: time.Second}

	_, err := d.KafkaBootstrap(context.Background(), Kafka{Brokers: []string{webAddr}}, KafkaSessionOptions{})
	if err == nil || errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), webAddr+" is not a Kafka server: it answered like HTTP") {
		t.Errorf("kafka at HTTP: %v", err)
	}
	_, err = d.ConnectZooKeeper(context.Background(), ZooKeeper{Servers: []string{webAddr}})
	if err == nil || errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), webAddr+" is not a ZooKeeper server: it answered like HTTP") {
		t.Errorf("zookeeper at HTTP: %v", err)
	}
}

func TestKafkaAtRealRedisPort(t *testing.T) {
	redisAddr := testenv.List(t, testenv.Redis)[0]
	d := Dialer{Timeout: time.Second}
	_, err := d.KafkaBootstrap(context.Background(), Kafka{Brokers: []string{redisAddr}}, KafkaSessionOptions{})
	if err == nil || errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), "is not a Kafka server: it answered like Redis") {
		t.Fatalf("%v", err)
	}
}
