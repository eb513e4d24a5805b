package mapping

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeKnown decodes n into v (a pointer to a struct) as n.Decode does,
// refusing a key v has no field for. The decoder's KnownFields check does
// not reach the nodes an UnmarshalYAML method decodes itself, so without
// this a misspelt key inside a column's options (onn: insert), a soft
// deletion (clera:) or the trials (colums:) would be dropped silently.
func decodeKnown(n *yaml.Node, v any) error {
	if n.Kind == yaml.MappingNode {
		known := yamlKeys(reflect.TypeOf(v).Elem())
		for i := 0; i+1 < len(n.Content); i += 2 {
			if key := n.Content[i].Value; !slices.Contains(known, key) {
				return fmt.Errorf("line %d: unknown key %q: want %s", n.Content[i].Line, key, strings.Join(known, ", "))
			}
		}
	}
	return n.Decode(v)
}

// yamlKeys are the keys of a struct type's yaml tags, in field order; a
// field without a tag is its lowercased name, as yaml.v3 reads it.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, name)
	}
	return keys
}
