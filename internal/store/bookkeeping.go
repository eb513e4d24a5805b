package store

import (
	_ "embed"
	"fmt"
	"strings"
	"text/template"
)

// bookkeepingFile holds the statements on clerksync's bookkeeping tables,
// whatever the mapping (the mapped tables' are internal/store/sqlgen's).
//
//go:embed bookkeeping.sql
var bookkeepingFile string

var bookkeepingTemplates = template.Must(template.New("bookkeeping").Option("missingkey=error").Parse(bookkeepingFile))

// bookkeeping is bookkeeping.sql written for one bookkeeping schema.
type bookkeeping struct {
	markSeen, forgetRun, seenRuns, recordInstance, recordedInstance, membershipRefusal string
	// of holds the statements on each entity's tombstones.
	of map[string]tombstoneSQL
}

// tombstoneSQL are the statements on one entity's tombstones.
type tombstoneSQL struct {
	deleted, tombstone, requestErasure, pendingErasures, markErased, erasureOf string
}

// newBookkeeping renders bookkeeping.sql for schema.
func newBookkeeping(schema string) bookkeeping {
	render := func(name, tombstones string) string {
		var b strings.Builder
		data := struct{ Schema, Tombstones string }{schema, schema + "." + tombstones}
		if err := bookkeepingTemplates.ExecuteTemplate(&b, name, data); err != nil {
			panic(fmt.Sprintf("store: render %s: %v", name, err)) // a defect of bookkeeping.sql: every test renders it
		}
		return b.String()
	}
	bk := bookkeeping{
		markSeen: render("mark_seen", ""), forgetRun: render("forget_run", ""), seenRuns: render("seen_runs", ""),
		recordInstance: render("record_instance", ""), recordedInstance: render("recorded_instance", ""),
		membershipRefusal: render("membership_refusal", ""), of: map[string]tombstoneSQL{},
	}
	for _, e := range entities {
		bk.of[e.tombstones] = tombstoneSQL{
			deleted: render("deleted", e.tombstones), tombstone: render("tombstone", e.tombstones),
			requestErasure: render("request_erasure", e.tombstones), pendingErasures: render("pending_erasures", e.tombstones),
			markErased: render("mark_erased", e.tombstones), erasureOf: render("erasure_of", e.tombstones),
		}
	}
	return bk
}
