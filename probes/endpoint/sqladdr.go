package endpoint

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/dsctl/dsctl/probes/errs"
)

// SQLAddr is the host:port of the database server ep names, for a fault proxy in
// front of it (`lock verify`). It does no I/O and never returns the DSN; a Unix
// socket is a usage error (no TCP address to put a proxy in front of).
func (d Dialer) SQLAddr(ep SQL) (string, error) {
	t, err := d.SQLTarget(ep)
	if err != nil {
		return "", err
	}
	switch t.Driver {
	case "mysql":
		cfg, err := mysql.ParseDSN(t.dsn)
		if err != nil {
			return "", errs.Usage("sql %s: %s", t.Name, maskErr(err, t.dsn))
		}
		if cfg.Net != "tcp" && cfg.Net != "tcp6" && cfg.Net != "tcp4" {
			return "", errs.Usage("sql %s: the DSN connects over %s, not TCP", t.Name, cfg.Net).
				WithHint("use a DSN with @tcp(host:port) for this command")
		}
		return withDefaultPort(cfg.Addr, "3306"), nil
	default:
		pc, err := pgx.ParseConfig(t.dsn)
		if err != nil {
			return "", errs.Usage("sql %s: %s", t.Name, maskErr(err, t.dsn))
		}
		if strings.HasPrefix(pc.Host, "/") {
			return "", errs.Usage("sql %s: the DSN connects over a Unix socket, not TCP", t.Name).
				WithHint("use a DSN with host=HOST port=PORT (or postgres://user@host:5432/db) for this command")
		}
		return net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))), nil
	}
}

// SQLAt is ep with its server address replaced by addr (host:port, a fault proxy),
// keeping the user, password, database and parameters. The result carries the new DSN
// as a value, like DSCTL_SQL_DSN: it is never printed. TLS that verifies the server's
// name would check addr's host: proxies are for plain loopback tests.
func (d Dialer) SQLAt(ep SQL, addr string) (SQL, error) {
	t, err := d.SQLTarget(ep)
	if err != nil {
		return SQL{}, err
	}
	out := SQL{Driver: t.Driver}
	switch t.Driver {
	case "mysql":
		cfg, err := mysql.ParseDSN(t.dsn)
		if err != nil {
			return SQL{}, errs.Usage("sql %s: %s", t.Name, maskErr(err, t.dsn))
		}
		cfg.Net, cfg.Addr = "tcp", addr
		return out.WithDSNValue(cfg.FormatDSN()), nil
	default:
		lower := strings.ToLower(t.dsn)
		if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
			u, err := url.Parse(t.dsn)
			if err != nil {
				return SQL{}, errs.Usage("sql %s: bad PostgreSQL URL %s", t.Name, MaskURL(t.dsn))
			}
			u.Host = addr
			return out.WithDSNValue(u.String()), nil
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return SQL{}, errs.Usage("sql: bad address %q", addr)
		}
		// Keyword/value DSN: a later keyword overrides an earlier one.
		return out.WithDSNValue(t.dsn + " host=" + host + " port=" + port), nil
	}
}

// SQLUser is the user name in ep's DSN, for -v ("host and user only"): never the
// password. Empty when the DSN cannot be read or names no user.
func (d Dialer) SQLUser(ep SQL) string {
	t, err := d.SQLTarget(ep)
	if err != nil {
		return ""
	}
	if t.Driver == "mysql" {
		if cfg, err := mysql.ParseDSN(t.dsn); err == nil {
			return cfg.User
		}
		return ""
	}
	if pc, err := pgx.ParseConfig(t.dsn); err == nil {
		return pc.User
	}
	return ""
}
