package endpoint

import (
	"net/url"
	"regexp"
	"strings"
)

// Masked is what a secret looks like in any output.
const Masked = "****"

// MaskURL hides the password in a URL's user info (redis://user:pass@host → redis://user:****@host).
// Text that is not a URL with a password is returned unchanged.
func MaskURL(s string) string {
	if !strings.Contains(s, "://") {
		return MaskDSN(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return maskURLText(s)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Masked)
		return strings.Replace(u.String(), url.QueryEscape(Masked), Masked, 1)
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, Masked)
			changed = true
		}
	}
	if changed {
		u.RawQuery = strings.ReplaceAll(q.Encode(), url.QueryEscape(Masked), Masked)
	}
	return u.String()
}

var (
	urlUserinfo = regexp.MustCompile(`(://[^:/@\s]*):[^@\s]*@`)
	mysqlDSN    = regexp.MustCompile(`^([^:@/\s]*):[^@]*@(tcp|unix|/)`)
	kvPassword  = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
)

func maskURLText(s string) string { return urlUserinfo.ReplaceAllString(s, "${1}:"+Masked+"@") }

// MaskDSN hides passwords in MySQL DSNs (user:pass@tcp(...)) and key=value DSNs
// (password=...).
func MaskDSN(s string) string {
	s = mysqlDSN.ReplaceAllString(s, "${1}:"+Masked+"@${2}")
	return kvPassword.ReplaceAllString(s, "${1}"+Masked)
}

// maskErr renders err with every occurrence of the DSN's password removed, since
// drivers sometimes echo their input.
func maskErr(err error, dsn string) string {
	msg := err.Error()
	for _, secret := range secretsIn(dsn) {
		if len(secret) >= 3 {
			msg = strings.ReplaceAll(msg, secret, Masked)
		}
	}
	return maskURLText(MaskDSN(msg))
}

// secretsIn extracts password values from a DSN so they can be scrubbed from messages.
func secretsIn(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if m := regexp.MustCompile(`^[^:@/\s]*:([^@]*)@`).FindStringSubmatch(dsn); m != nil {
		out = append(out, m[1])
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		out = append(out, strings.Trim(m[2], "'"))
	}
	return out
}
