package sqllock_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Every run of this package uses its own tables (random suffix) and drops them at the
// end, so parallel runs on the shared servers do not collide.
var (
	runID     = randHex(4)
	tablesMu  sync.Mutex
	tables    = map[string]map[string]bool{} // dsn -> tables to drop
	initOnce  sync.Map                       // dsn+table -> *sync.Once
	initError sync.Map
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestMain(m *testing.M) {
	code := m.Run()
	dropTables()
	os.Exit(code)
}

func dropTables() {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	for dsn, ts := range tables {
		db, _, err := endpoint.Dialer{Timeout: 5 * time.Second}.ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue(dsn))
		if err != nil {
			continue
		}
		for t := range ts {
			_, _ = db.Exec("DROP TABLE IF EXISTS " + t)
		}
		db.Close()
	}
}

// dbs are the two databases under test.
var dbs = []struct{ name, env string }{
	{"mysql", testenv.MySQL},
	{"postgres", testenv.Postgres},
}

// forEachDB runs f against MariaDB and PostgreSQL.
func forEachDB(t *testing.T, f func(t *testing.T, dsn string)) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			f(t, testenv.Get(t, db.env))
		})
	}
}

// table is this run's table for a purpose ("locks", "shed", ...).
func table(what string) string { return "dsctl_t_" + what + "_" + runID }

func remember(dsn, tbl string) {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	if tables[dsn] == nil {
		tables[dsn] = map[string]bool{}
	}
	tables[dsn][tbl] = true
}

// newLocker opens a Locker on this run's table, created once per database.
func newLocker(t testing.TB, dsn string, opt sqllock.Options) *sqllock.Locker {
	t.Helper()
	if opt.Table == "" {
		opt.Table = table("locks")
	}
	l, err := sqllock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	remember(dsn, opt.Table)
	once, _ := initOnce.LoadOrStore(dsn+"/"+opt.Table+"/"+string(opt.Format), &sync.Once{})
	once.(*sync.Once).Do(func() {
		if _, err := l.Init(context.Background()); err != nil {
			initError.Store(dsn+"/"+opt.Table, err)
		}
	})
	if err, ok := initError.Load(dsn + "/" + opt.Table); ok {
		t.Fatal(err)
	}
	return l
}

var owner = lock.CurrentOwner(777, "sqllock test", "sql", "dsctl test")

func TestContractLease(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		notify := false
		if l := newLocker(t, dsn, sqllock.Options{}); l.Backend().Kind == "postgres" {
			notify = true
		}
		locktest.Run(t, locktest.Caps{FencingSafe: true, Notify: notify}, func(t *testing.T) lock.Locker {
			return newLocker(t, dsn, sqllock.Options{})
		})
	})
}

func TestContractSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		locktest.Run(t, locktest.Caps{FencingSafe: true, Notify: true}, func(t *testing.T) lock.Locker {
			return newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		})
	})
}
