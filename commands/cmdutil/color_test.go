package cmdutil

import "testing"

func TestNoColorEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"TERM": "xterm-256color"}, false},
		{map[string]string{"TERM": "dumb"}, true},
		{map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, true},
		{map[string]string{}, false},
	}
	for _, c := range cases {
		if got := NoColorEnv(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}
