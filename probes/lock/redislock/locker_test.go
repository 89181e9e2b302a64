package redislock_test

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/testenv"
)

func newLocker(t testing.TB, addrs ...string) *redislock.Locker {
	t.Helper()
	l, err := redislock.New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// miniredis is the --sandbox server: the contract must hold there too. Its TTLs run on
// the wall clock only with ClockTTL, which the tests turn on (expiry is part of the
// contract).
func startMiniredis(t testing.TB) *miniredis.Miniredis {
	m := miniredis.RunT(t)
	m.ClockTTL(true)
	return m
}

func TestContractOnMiniredis(t *testing.T) {
	m := startMiniredis(t)
	locktest.Run(t, locktest.Caps{FencingSafe: true, Notify: true}, func(t *testing.T) lock.Locker { return newLocker(t, m.Addr()) })
}

func TestContractOnRealRedis(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	locktest.Run(t, locktest.Caps{FencingSafe: true, Notify: true}, func(t *testing.T) lock.Locker { return newLocker(t, addr) })
}

func TestContractOnRealRedisQuorum(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	locktest.Run(t, locktest.Caps{FencingSafe: false, Notify: true}, func(t *testing.T) lock.Locker { return newLocker(t, addrs...) })
}
