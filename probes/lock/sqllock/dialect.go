package sqllock

import (
	"fmt"
	"strings"
)

// dialect holds what differs between MySQL/MariaDB and PostgreSQL: quoting,
// placeholders, the database clock, and the DDL. Every time the database compares or
// stores is its own clock: UTC_TIMESTAMP(6) in DATETIME(6) columns on MySQL (no time
// zone conversions, microseconds), clock_timestamp() in timestamptz columns on
// PostgreSQL (the wall clock at that moment, not the transaction start).
type dialect interface {
	name() string
	quoteTable(t string) string
	// ph is the n-th placeholder (1-based).
	ph(n int) string
	// now is the database clock.
	now() string
	// plusMs is now + a number of milliseconds given as an SQL expression.
	plusMs(ms string) string
	// epochMicros is a timestamp column as microseconds since 1970 (NULL stays NULL).
	epochMicros(col string) string
	// leftMicros is the time from now until a timestamp column, in microseconds.
	leftMicros(col string) string
	// ddl creates the dsctl table if missing.
	ddl(qtable string) []string
}

// Column limits of the dsctl table.
const (
	tokenLen  = 64
	byLen     = 255
	reasonLen = 255
)

type mysqlDialect struct{}

func (mysqlDialect) name() string { return "mysql" }

func (mysqlDialect) quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ".")
}

func (mysqlDialect) ph(int) string { return "?" }
func (mysqlDialect) now() string   { return "UTC_TIMESTAMP(6)" }
func (mysqlDialect) plusMs(ms string) string {
	return "UTC_TIMESTAMP(6) + INTERVAL (" + ms + " * 1000) MICROSECOND"
}
func (mysqlDialect) epochMicros(col string) string {
	return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " + col + ")"
}
func (mysqlDialect) leftMicros(col string) string {
	return "TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), " + col + ")"
}

func (mysqlDialect) ddl(qtable string) []string {
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  name         VARCHAR(%d) NOT NULL,
  token        VARCHAR(%d) NULL,
  owner        TEXT NULL,
  fence        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ttl_ms       BIGINT NOT NULL DEFAULT 0,
  acquired_at  DATETIME(6) NULL,
  expires_at   DATETIME(6) NOT NULL,
  session_id   BIGINT NULL,
  break_at     DATETIME(6) NULL,
  break_by     VARCHAR(%d) NULL,
  break_reason VARCHAR(%d) NULL,
  break_token  VARCHAR(%d) NULL,
  break_fence  BIGINT UNSIGNED NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`, qtable, maxName, tokenLen, byLen, reasonLen, tokenLen)}
}

type pgDialect struct{}

func (pgDialect) name() string { return "postgres" }

func (pgDialect) quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

func (pgDialect) ph(n int) string { return fmt.Sprintf("$%d", n) }
func (pgDialect) now() string     { return "clock_timestamp()" }
func (pgDialect) plusMs(ms string) string {
	return "clock_timestamp() + (" + ms + ")::bigint * interval '1 millisecond'"
}
func (pgDialect) epochMicros(col string) string {
	return "(EXTRACT(EPOCH FROM " + col + ") * 1000000)::bigint"
}
func (pgDialect) leftMicros(col string) string {
	return "(EXTRACT(EPOCH FROM (" + col + " - clock_timestamp())) * 1000000)::bigint"
}

func (pgDialect) ddl(qtable string) []string {
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  name         VARCHAR(%d) NOT NULL PRIMARY KEY,
  token        VARCHAR(%d) NULL,
  owner        TEXT NULL,
  fence        BIGINT NOT NULL DEFAULT 0,
  ttl_ms       BIGINT NOT NULL DEFAULT 0,
  acquired_at  TIMESTAMPTZ(6) NULL,
  expires_at   TIMESTAMPTZ(6) NOT NULL,
  session_id   BIGINT NULL,
  break_at     TIMESTAMPTZ(6) NULL,
  break_by     VARCHAR(%d) NULL,
  break_reason VARCHAR(%d) NULL,
  break_token  VARCHAR(%d) NULL,
  break_fence  BIGINT NULL
)`, qtable, maxName, tokenLen, byLen, reasonLen, tokenLen)}
}

// maxName is the name column's length: lock.MaxNameLen bytes always fit (MySQL counts
// characters, PostgreSQL characters too; a character is at least a byte).
const maxName = 200

// dsctlColumns are the columns the dsctl table must have.
var dsctlColumns = []string{"name", "token", "owner", "fence", "ttl_ms", "acquired_at", "expires_at", "session_id",
	"break_at", "break_by", "break_reason", "break_token", "break_fence"}

// shedlockColumns are ShedLock's.
var shedlockColumns = []string{"name", "lock_until", "locked_at", "locked_by"}
