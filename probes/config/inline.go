package config

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// InlineSecret is a secret written into the config file as text (password: hunter2)
// rather than named by {env: VAR} or {file: PATH}. Its value is never kept.
type InlineSecret struct {
	// Key is the dotted path of the key: contexts.prod.kafka.sasl.password.
	Key  string `json:"key"`
	Line int    `json:"line"`
}

// InlineSecretsError reports inline secrets. The rest of the file was read, so
// `config view` can still print it (with them masked); every other command refuses it.
type InlineSecretsError struct {
	Secrets []InlineSecret
}

func (e *InlineSecretsError) Error() string {
	s := e.Secrets[0]
	msg := fmt.Sprintf("line %d: %s: secrets are never stored inline", s.Line, s.Key)
	if n := len(e.Secrets) - 1; n > 0 {
		more := make([]string, 0, n)
		for _, o := range e.Secrets[1:] {
			more = append(more, fmt.Sprintf("%s (line %d)", o.Key, o.Line))
		}
		msg += fmt.Sprintf("; also inline: %s", strings.Join(more, ", "))
	}
	return msg
}

// Hint says what to write instead of the first inline secret.
func (e *InlineSecretsError) Hint() string {
	s := e.Secrets[0]
	key := s.Key[strings.LastIndexByte(s.Key, '.')+1:]
	return fmt.Sprintf("edit line %d to %s: {env: VAR} or %s: {file: PATH}; 'dsctl config view' shows the file with it masked", s.Line, key, key)
}

// secretKeys are the keys whose values are endpoint.Secret.
var secretKeys = map[string]bool{"password": true, "digest_password": true, "dsn": true}

// stripInlineSecrets parses src, finds secret keys under contexts whose value is text,
// and replaces each such value by an empty mapping in the returned tree, so the file
// decodes without it. It returns nil (and no secrets) when src does not parse: the
// decoder then reports the syntax error itself.
func stripInlineSecrets(src []byte) (*ast.File, []InlineSecret) {
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, nil
	}
	var found []InlineSecret
	for _, doc := range file.Docs {
		walkMapping(doc.Body, nil, &found)
	}
	if len(found) == 0 {
		return nil, nil
	}
	return file, found
}

func walkMapping(n ast.Node, path []string, found *[]InlineSecret) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		return
	}
	for _, mv := range values {
		if mv.Key == nil {
			continue
		}
		key := mv.Key.GetToken().Value
		p := append(path[:len(path):len(path)], key)
		if len(p) > 2 && p[0] == "contexts" && secretKeys[key] && isText(mv.Value) {
			*found = append(*found, InlineSecret{Key: strings.Join(p, "."), Line: mv.Key.GetToken().Position.Line})
			mv.Value = emptyMapping()
			continue
		}
		walkMapping(mv.Value, p, found)
	}
}

// isText reports a value that is not a mapping (nor empty): text, a number, a list.
func isText(n ast.Node) bool {
	switch n.(type) {
	case nil, *ast.MappingNode, *ast.MappingValueNode, *ast.NullNode:
		return false
	}
	return true
}

func emptyMapping() ast.Node {
	f, err := parser.ParseBytes([]byte("{}"), 0)
	if err != nil || len(f.Docs) == 0 {
		panic("config: cannot parse {}")
	}
	return f.Docs[0].Body
}
