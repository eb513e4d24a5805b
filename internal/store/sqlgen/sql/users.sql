{{/*
The user statements. user_apply takes a source relation src (one row per
user, tombstoned users left out) to the written rows: apply decides which
rows win, state records their versions, and write (write.sql) writes them.
With .TrialPeriod (an interval parameter) apply also says which users this
write gives their trial (grant_trial: never given one, and Clerk's
created_at plus the period still ahead), and state records it as given.
*/}}
{{- define "user_apply"}}
apply as materialized (
    select src.*{{if .TrialPeriod}},
           src.created_at + {{.TrialPeriod}}::interval as trial_ends,
           src.created_at + {{.TrialPeriod}}::interval > now()
               and (select st.trial_granted_at from {{.Schema}}.user_state st where st.clerk_id = src.clerk_id) is null as grant_trial{{end}}
    from src
    where {{.Absent}}
       or (src.updated_at > 'epoch' and not exists (
           select 1 from {{.Schema}}.user_state st
           where st.clerk_id = src.clerk_id and {{.Holds}}))
), state as (
    insert into {{.Schema}}.user_state as st (clerk_id, clerk_updated_at, content_hash, projection{{if .TrialPeriod}}, trial_granted_at{{end}})
    select clerk_id, updated_at, content_hash, {{.Projection}}{{if .TrialPeriod}}, case when grant_trial then now() end{{end}} from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection{{if .TrialPeriod}},
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at){{end}}
),{{.Write}}{{end}}

{{- /* user_upsert writes one user, its parameters the user relation's (@clerk_id, @email, ...). */ -}}
{{- define "user_upsert"}}
with tombstone as (
    select 1 from {{.Apply.Schema}}.user_tombstones where clerk_id = @clerk_id
), src as (
    select {{.Params}}
    where not exists (select 1 from tombstone)
),{{template "user_apply" .Apply}}
select
    coalesce((select id from written), (select {{.Key}}::text from {{.Table}} where {{.ClerkID}} = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone){{end}}

{{- /*
user_page writes a page of users, passed as named arrays unnested
(.Relation), each user looked up once in the tombstones (checked), and
with .TrialInsert their trials too. It answers the users inserted, the
users updated, those refused as tombstoned, and the trials given.
*/ -}}
{{- define "user_page"}}
with page as (
    {{.Relation}}
), checked as materialized (
    select p.*, {{.Live}} as live
    from page p
), src as materialized (
    select distinct on (p.clerk_id) p.*
    from checked p
    where p.live
    order by p.clerk_id, p.updated_at desc, p.content_hash desc
),{{template "user_apply" .Apply}}{{if .TrialInsert}}, trial as ({{.TrialInsert}}
){{end}}
select
    count(*) filter (where inserted),
    count(*) filter (where not inserted),
    (select count(*) from checked where not live),
    {{if .TrialInsert}}(select count(*) from trial){{else}}0{{end}}
from written{{end}}

{{- /*
user_lookup reads the row of a Clerk ID ($1): its key, its Clerk ID, the
columns ensure answers as JSON (.Row), whether it is a minimal row,
whether the user is deleted, and whether the row's removal is .Pending.
*/ -}}
{{- define "user_lookup"}}
select u.{{.Key}}::text, u.{{.ClerkID}},
       {{.Row}} || jsonb_build_object('clerk_id', u.{{.ClerkID}}),
       coalesce((select st.clerk_updated_at <= 'epoch' from {{.Schema}}.user_state st where st.clerk_id = u.{{.ClerkID}}), false),
       exists (select 1 from {{.Schema}}.user_tombstones t where t.clerk_id = u.{{.ClerkID}}),
       {{.Pending}}
from {{.Table}} u where u.{{.ClerkID}} = $1{{end}}

{{- /* user_count counts the live users with a Clerk ID: an app's rows from before Clerk are not Clerk's users. */ -}}
{{- define "user_count"}}select count(*) from {{.Table}} u where {{.Live}} and u.{{.ClerkID}} is not null{{end}}

{{- /*
user_unseen: the live users a run ($1, started at $2) did not see in
Clerk's listing and that existed before it started, the candidates
reconciliation confirms with Clerk. A row clerksync first wrote after the
run began may be missing from its listing; a row it never wrote (the
product's own) is as old as any; a row without a Clerk ID (the app's,
from before Clerk) is no Clerk user to confirm. .Count counts them all;
otherwise up to $4 of them after the Clerk ID $3, in Clerk ID order.
*/ -}}
{{- define "user_unseen"}}
select {{if .Count}}count(*){{else}}u.{{.ClerkID}}::text{{end}}
from {{.Table}} u
where {{.Live}} and u.{{.ClerkID}} is not null
  and not exists (select 1 from {{.Schema}}.user_state st where st.clerk_id = u.{{.ClerkID}} and st.first_written_at >= $2)
  and not exists (select 1 from {{.Schema}}.backfill_seen s where s.run = $1 and s.clerk_id = u.{{.ClerkID}})
  and not exists (select 1 from {{.Schema}}.user_tombstones t where t.clerk_id = u.{{.ClerkID}}){{if not .Count}}
  and u.{{.ClerkID}} > $3
order by u.{{.ClerkID}}
limit $4{{end}}{{end}}
