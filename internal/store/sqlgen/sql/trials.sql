{{/*
The trial statements. Slots hold SQL: the quoted table and its columns
(.Table, .User, .Key, .Plan, .Status, .EndsAt), the users table's
(.UserTable, .UserKey, .UserClerkID), literals (.PlanValue, .Trialing),
and the time conversions of the ends-at column's type. A user who already
has a row in the table (a paid plan, an earlier trial, any status) gets no
trial: the signup trial is for new customers.
*/}}
{{- define "trial_grant"}}
with granted as (
    update {{.Schema}}.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
insert into {{.Table}} ({{join .InsertCols ", "}})
select {{.GrantValues}} from granted g join {{.UserTable}} u on u.{{.UserClerkID}} = g.clerk_id
where not exists (select 1 from {{.Table}} x where x.{{.User}} = u.{{.UserKey}})
on conflict do nothing
returning {{.EndsAtOut}}{{end}}

{{- /* trial_page_insert gives the users of a page (user_page's apply a, written w) their trials. */ -}}
{{- define "trial_page_insert"}}
    insert into {{.Table}} ({{join .InsertCols ", "}})
    select {{.PageValues}}
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and not exists (select 1 from {{.Table}} x where x.{{.User}} = w.user_key)
    on conflict do nothing
    returning 1{{end}}

{{- define "trial_expire"}}
update {{.Table}} set {{join .ExpireSets ", "}}
where {{.Key}} in (
    select {{.Key}} from {{.Table}}
    where {{.Status}} = {{.Trialing}} and {{.Plan}} = {{.PlanValue}} and {{.EndsAt}} <= {{.EndsNow}}
    order by {{.EndsAt}}
    limit $1
    for update skip locked
){{end}}

{{- define "trial_due"}}
update {{.Table}} s set {{.EndsAt}} = {{.EndsMinuteAgo}}
from {{.UserTable}} u
where u.{{.UserKey}} = s.{{.User}} and u.{{.UserClerkID}} = $1 and s.{{.Plan}} = {{.PlanValue}}{{end}}

{{- define "trial_lookup"}}
select s.{{.Status}}::text, {{.EndsAtRead}}, to_jsonb(s)
from {{.Table}} s join {{.UserTable}} u on u.{{.UserKey}} = s.{{.User}}
where u.{{.UserClerkID}} = $1 and s.{{.Plan}} = {{.PlanValue}}{{end}}
