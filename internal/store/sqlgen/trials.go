package sqlgen

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clerksync/clerksync/internal/mapping"
)

// Trials is the SQL for the table trials are written to: clerksync's
// own subscriptions table, or a product's, mapped. Like userTable, it is
// built once.
type Trials struct {
	// Grant gives one user ($1, Clerk ID) its trial ending at $2.
	Grant string
	// Page writes a Page of users (userTable.pageStatement) and gives those
	// it writes their trials, ending at Clerk's created_at plus the trial
	// period (an interval, the statement's last parameter), in the same
	// statement: the users' keys come from the rows it writes, and the
	// trial is recorded as given in the same user_state row as the version.
	Page string
	// Expire expires at most $1 due trials.
	Expire string
	// Lookup reads a user's ($1) trial: status, end, the row as JSON.
	Lookup string
	// Due ends a user's ($1) trial a minute ago, so that expire takes it:
	// ProveMapping's, in the transaction it rolls back.
	Due string
}

// TrialPlan is the plan of the trial subscription every new user gets in
// clerksync's own subscriptions table.
const TrialPlan = "trial"

// ownTrials is the mapping of clerksync's own subscriptions table.
var ownTrials = &mapping.Trials{
	Table: mapping.Table{Name: "subscriptions"}, User: "user_id", Key: mapping.Key{Column: "id"},
	PlanColumn: "plan", PlanValue: TrialPlan, StatusColumn: "status", Trialing: "trialing", Expired: "expired",
	EndsAt: "trial_ends_at", Columns: []mapping.Column{{Name: "updated_at", Source: mapping.SourceNow}},
}

var ownTrialsTypes = map[string]ColumnInfo{
	"id": {DataType: "uuid", hasDefault: true}, "user_id": {DataType: "uuid"}, "plan": {DataType: "text"},
	"status": {DataType: "text"}, "trial_ends_at": {DataType: "timestamp with time zone", Nullable: true},
	"created_at": {DataType: "timestamp with time zone", hasDefault: true},
	"updated_at": {DataType: "timestamp with time zone", hasDefault: true},
}

// compileTrials builds a trialTable for users written to users, or says,
// one line per mistake, what in the mapping the table cannot take.
func compileTrials(m *mapping.Trials, cols map[string]ColumnInfo, users *Users, userKeyType string) (*Trials, error) {
	var p []string
	problem := func(col, format string, args ...any) {
		p = append(p, fmt.Sprintf("trials table %s, column %s: ", m.Table, col)+fmt.Sprintf(format, args...))
	}
	info := func(name string) (ColumnInfo, bool) {
		ci, ok := cols[name]
		if !ok {
			problem(name, "no such column; add it to the table, or take it out of the mapping")
		}
		return ci, ok
	}
	name := quoteTable(m.Table)
	written := map[string]bool{}
	insertCols := []string{quote(m.User), quote(m.PlanColumn), quote(m.StatusColumn), quote(m.EndsAt)}
	if ci, ok := info(m.User); ok && ci.DataType != userKeyType {
		problem(m.User, "type %s does not match the users key's (%s)", ci.DataType, userKeyType)
	}
	for _, cv := range []struct {
		column string
		values []string
	}{{m.PlanColumn, []string{m.PlanValue}}, {m.StatusColumn, []string{m.Trialing, m.Expired}}} {
		c, values := cv.column, cv.values
		ci, ok := info(c)
		switch {
		case !ok:
		case len(ci.enumLabels) > 0:
			for _, v := range values {
				if !slices.Contains(ci.enumLabels, v) {
					problem(c, "%q is not a label of enum %s (%s); write one of its labels", v, ci.DataType, strings.Join(ci.enumLabels, ", "))
				}
			}
		case !slices.Contains(textTypes, ci.DataType):
			problem(c, "type %s cannot hold text; make it text", ci.DataType)
		}
	}
	endsInfo, ok := info(m.EndsAt)
	endsAt := func(expr string) string { e, _ := timeInto(expr, endsInfo.DataType); return e }
	if _, convertible := timeInto("now()", endsInfo.DataType); ok && !convertible {
		problem(m.EndsAt, "type %s cannot hold the trial's end; make it timestamptz, timestamp or bigint", endsInfo.DataType)
	}
	nowCols, nowVals := []string{}, []string{}
	for _, c := range m.Columns {
		ci, ok := info(c.Name)
		if !ok {
			continue
		}
		v, convertible := timeInto("now()", ci.DataType)
		if !convertible {
			problem(c.Name, "type %s cannot hold the time of the write; make it timestamptz, timestamp or bigint", ci.DataType)
		}
		nowCols, nowVals = append(nowCols, quote(c.Name)), append(nowVals, v)
		written[c.Name] = true
	}
	var keyCols, keyVals []string
	if ci, ok := info(m.Key.Column); ok {
		gen, convertible := keyExpr(m.Key, ci.DataType)
		switch {
		case !convertible:
			problem(m.Key.Column, "type %s cannot hold a generated uuid; make it text or uuid, or give it a default", ci.DataType)
		case gen == "" && !ci.hasDefault:
			problem(m.Key.Column, "the primary key has no database default; say how a new row's key is made: key: {column: %s, generate: uuid}", m.Key.Column)
		case gen != "":
			keyCols, keyVals = []string{quote(m.Key.Column)}, []string{gen}
		}
	}
	for _, c := range []string{m.User, m.PlanColumn, m.StatusColumn, m.EndsAt, m.Key.Column} {
		written[c] = true
	}
	for _, col := range slices.Sorted(maps.Keys(cols)) {
		if ci := cols[col]; !ci.Nullable && !ci.hasDefault && !written[col] {
			problem(col, "NOT NULL without a default, and the mapping does not write it; map it (now) or give it a default")
		}
	}
	if len(p) > 0 {
		return nil, errors.New(strings.Join(p, "\n"))
	}
	insertCols = append(append(insertCols, keyCols...), nowCols...)
	values := func(userKey, ends string) string {
		return strings.Join(append(append([]string{userKey, literal(m.PlanValue), literal(m.Trialing), endsAt(ends)}, keyVals...), nowVals...), ", ")
	}
	insert := `insert into ` + name + ` (` + strings.Join(insertCols, ", ") + `)`
	// The signup trial is for new customers: a user who already has a row
	// in the table (a paid plan, an earlier trial, any status) gets none,
	// whether the table allows several rows per user or not; where it
	// does not (a unique index on the user), the insert also does nothing.
	noRowYet := func(userKey string) string {
		return `not exists (select 1 from ` + name + ` x where x.` + quote(m.User) + ` = ` + userKey + `)`
	}
	t := &Trials{}
	t.Grant = `
with granted as (
    update ` + users.Schema + `.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
` + insert + `
select ` + values("u."+users.Key, "$2::timestamptz") + ` from granted g join ` + users.Name + ` u on u.` + users.ClerkID + ` = g.clerk_id
where ` + noRowYet("u."+users.Key) + `
on conflict do nothing
returning ` + timeFrom(quote(m.EndsAt), endsInfo.DataType)
	t.Page = users.pageStatement(`
    ` + insert + `
    select ` + values("w.user_key", "a.trial_ends") + `
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and ` + noRowYet("w.user_key") + `
    on conflict do nothing
    returning 1`)
	set := []string{quote(m.StatusColumn) + " = " + literal(m.Expired)}
	for i, c := range nowCols {
		set = append(set, c+" = "+nowVals[i])
	}
	key, ends, status, plan := quote(m.Key.Column), quote(m.EndsAt), quote(m.StatusColumn), quote(m.PlanColumn)
	t.Expire = `
update ` + name + ` set ` + strings.Join(set, ", ") + `
where ` + key + ` in (
    select ` + key + ` from ` + name + `
    where ` + status + ` = ` + literal(m.Trialing) + ` and ` + plan + ` = ` + literal(m.PlanValue) + ` and ` + ends + ` <= ` + endsAt("now()") + `
    order by ` + ends + `
    limit $1
    for update skip locked
)`
	t.Due = `
update ` + name + ` s set ` + ends + ` = ` + endsAt("(now() - interval '1 minute')") + `
from ` + users.Name + ` u
where u.` + users.Key + ` = s.` + quote(m.User) + ` and u.` + users.ClerkID + ` = $1 and s.` + plan + ` = ` + literal(m.PlanValue)
	t.Lookup = `
select s.` + status + `::text, ` + timeFrom("s."+ends, endsInfo.DataType) + `, to_jsonb(s)
from ` + name + ` s join ` + users.Name + ` u on u.` + users.Key + ` = s.` + quote(m.User) + `
where u.` + users.ClerkID + ` = $1 and s.` + plan + ` = ` + literal(m.PlanValue)
	return t, nil
}
