package endpoint

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Checks of addresses and secret references, for commands that store them (config
// set-context) and so must refuse bad input before it is written. They do no I/O.

// CheckRedisAddr checks one Redis address: host[:port], or a redis://, rediss:// or
// unix:// URL.
func CheckRedisAddr(a string) error {
	a = strings.TrimSpace(a)
	if strings.Contains(a, "://") {
		if _, err := redis.ParseURL(a); err != nil {
			return fmt.Errorf("bad URL %s: %v", MaskURL(a), strings.ReplaceAll(err.Error(), a, MaskURL(a)))
		}
		return nil
	}
	return checkHostPort(a, "6379")
}

// CheckHostPort checks host[:port] (defaultPort fills a missing port).
func CheckHostPort(a, defaultPort string) error { return checkHostPort(a, defaultPort) }

// CarriesSecret reports whether an address has a password in it (user:pass@ or a
// password= parameter), which must not be stored in the config file.
func CarriesSecret(a string) bool { return MaskURL(a) != a }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckEnvName checks that s looks like an environment variable name. The error does
// not repeat s: a mistaken --x-password-env "$PASSWORD" passes the secret itself.
func CheckEnvName(s string) error {
	if !envName.MatchString(s) {
		return fmt.Errorf("not an environment variable name (use letters, digits and _, e.g. REDIS_PASSWORD; give the name, not $NAME)")
	}
	return nil
}
