package sqlgen

import (
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

// compileTrials builds the trials' SQL for users written to users, or
// says, one line per mistake, what in the mapping the table cannot take.
func compileTrials(m *mapping.Trials, cols map[string]ColumnInfo, users *Users, userKeyType string) (*Trials, error) {
	c := newTableCompiler("trials", m.Table, cols)
	c.unwrittenFix = "now"
	c.referenceColumn(m.User, userKeyType, "the users table")
	c.labelColumn(m.PlanColumn, m.PlanValue)
	c.labelColumn(m.StatusColumn, m.Trialing, m.Expired)
	c.written[m.EndsAt] = true
	endsInfo, ok := c.info(m.EndsAt)
	endsAt := func(expr string) string { e, _ := timeInto(expr, endsInfo.DataType); return e }
	if _, convertible := timeInto("now()", endsInfo.DataType); ok && !convertible {
		c.problem(m.EndsAt, "type %s cannot hold the trial's end; make it timestamptz, timestamp or bigint", endsInfo.DataType)
	}
	var nowCols, nowVals []string
	for _, col := range m.Columns {
		ci, ok := c.info(col.Name)
		if !ok {
			continue
		}
		v, convertible := timeInto("now()", ci.DataType)
		if !convertible {
			c.problem(col.Name, "type %s cannot hold the time of the write; make it timestamptz, timestamp or bigint", ci.DataType)
		}
		nowCols, nowVals = append(nowCols, quote(col.Name)), append(nowVals, v)
		c.written[col.Name] = true
	}
	keyCol, keyVal := c.keyColumn(m.Key)
	if err := c.err(); err != nil {
		return nil, err
	}
	insertCols := []string{quote(m.User), quote(m.PlanColumn), quote(m.StatusColumn), quote(m.EndsAt)}
	var keyVals []string
	if keyCol != "" {
		insertCols, keyVals = append(insertCols, keyCol), []string{keyVal}
	}
	insertCols = append(insertCols, nowCols...)
	values := func(userKey, ends string) string {
		return strings.Join(append(append([]string{userKey, literal(m.PlanValue), literal(m.Trialing), endsAt(ends)}, keyVals...), nowVals...), ", ")
	}
	expireSets := []string{quote(m.StatusColumn) + " = " + literal(m.Expired)}
	for i, col := range nowCols {
		expireSets = append(expireSets, col+" = "+nowVals[i])
	}
	slots := struct {
		Schema, Table, User, Key, Plan, Status, EndsAt, PlanValue, Trialing    string
		UserTable, UserKey, UserClerkID                                        string
		InsertCols, ExpireSets                                                 []string
		GrantValues, PageValues, EndsAtOut, EndsAtRead, EndsNow, EndsMinuteAgo string
	}{
		users.Schema, quoteTable(m.Table), quote(m.User), quote(m.Key.Column), quote(m.PlanColumn), quote(m.StatusColumn), quote(m.EndsAt),
		literal(m.PlanValue), literal(m.Trialing),
		users.Name, users.Key, users.ClerkID,
		insertCols, expireSets,
		values("u."+users.Key, "$2::timestamptz"), values("w.user_key", "a.trial_ends"),
		timeFrom(quote(m.EndsAt), endsInfo.DataType), timeFrom("s."+quote(m.EndsAt), endsInfo.DataType),
		endsAt("now()"), endsAt("(now() - interval '1 minute')"),
	}
	return &Trials{
		Grant:  render("trial_grant", slots),
		Page:   users.pageStatement(render("trial_page_insert", slots)),
		Expire: render("trial_expire", slots),
		Due:    render("trial_due", slots),
		Lookup: render("trial_lookup", slots),
	}, nil
}
