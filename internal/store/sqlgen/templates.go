package sqlgen

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// sqlFiles are the statements as whole SQL, their per-mapping parts left
// as named slots ({{.Table}}, {{.Sets}}): what a reviewer reads beside the
// golden SQL (internal/store/testdata/sql) it renders to.
//
//go:embed sql/*.sql
var sqlFiles embed.FS

// templates are sqlFiles parsed once. A slot the data does not fill is an
// error, not an empty string.
var templates = template.Must(template.New("sql").Option("missingkey=error").
	Funcs(template.FuncMap{"join": strings.Join}).ParseFS(sqlFiles, "sql/*.sql"))

// render fills the slots of the statement name with data, whose every
// value is SQL already: names quoted, values made literals or expressions
// by the helpers of expr.go. A template that fails is a defect of
// clerksync's own (the golden SQL test renders every one), not of a
// mapping, so it panics.
func render(name string, data any) string {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		panic(fmt.Sprintf("sqlgen: render %s: %v", name, err))
	}
	return b.String()
}
