{{/*
The organization and membership statements. Slots hold SQL: quoted names
(.Table, .ClerkID, .Key, ...), the bookkeeping schema (.Schema), the
relation's named parameters (.Params), a projection literal and the
holds condition (projection.go), and write (write.sql, ending in a
newline: its projection has hashed it so since organizations were kept).
*/}}
{{- define "organization_upsert"}}
with tombstone as (
    select 1 from {{.Schema}}.organization_tombstones where clerk_id = @clerk_id
), src as (
    select {{.Params}}
    where not exists (select 1 from tombstone)
), apply as materialized (
    select src.* from src
    where not exists (select 1 from {{.Table}} u where u.{{.ClerkID}} = src.clerk_id)
       or not exists (
           select 1 from {{.Schema}}.organization_state st
           where st.clerk_id = src.clerk_id and {{.Holds}})
), state as (
    insert into {{.Schema}}.organization_state (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, {{.Projection}} from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),{{.Write}}select (select inserted from written), exists (select 1 from tombstone),
       exists (select 1 from tombstone) and {{.RowLeft}}{{end}}

{{- define "organization_unseen"}}
select u.{{.ClerkID}}::text from {{.Table}} u
where {{.Live}}
  and not exists (select 1 from {{.Schema}}.organization_state st where st.clerk_id = u.{{.ClerkID}} and st.first_written_at >= $2)
  and not exists (select 1 from {{.Schema}}.backfill_seen s where s.run = $1 and s.clerk_id = u.{{.ClerkID}})
  and not exists (select 1 from {{.Schema}}.organization_tombstones t where t.clerk_id = u.{{.ClerkID}})
order by 1{{end}}

{{- /*
membership_upsert writes one membership of an organization and a user
whose rows exist (their keys: org_key, user_key), under last-writer-wins,
and nothing while a newer membership of the pair under another ID has a
row (held).
*/ -}}
{{- define "membership_upsert"}}
with src as (
    select {{.Params}}
), apply as materialized (
    select src.*, o.{{.OrgKey}} as org_key, mu.{{.UserKey}} as user_key
    from src
    join {{.OrgTable}} o on o.{{.OrgClerkID}} = src.organization_id
    join {{.UserTable}} mu on mu.{{.UserClerkID}} = src.user_id
    where not exists (
    select 1 from {{.Schema}}.membership_state st join {{.Table}} u on u.{{.ClerkID}} = st.clerk_id
    where st.organization_id = src.organization_id and st.user_id = src.user_id and st.clerk_id <> src.clerk_id
      and (st.clerk_updated_at, st.clerk_id collate "C") > (src.updated_at, src.clerk_id collate "C"))
      and (not exists (select 1 from {{.Table}} u where u.{{.ClerkID}} = src.clerk_id)
           or not exists (
               select 1 from {{.Schema}}.membership_state st
               where st.clerk_id = src.clerk_id and {{.Holds}}))
), state as (
    insert into {{.Schema}}.membership_state (clerk_id, organization_id, user_id, clerk_updated_at, role, projection)
    select clerk_id, organization_id, user_id, updated_at, role, {{.Projection}} from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        role             = excluded.role,
        projection       = excluded.projection
),{{.Write}}select (select inserted from written){{end}}

{{- /* membership_drop_older removes the row of the pair's ($2, $3) older membership under another ID than $1, older than $4: the user left and rejoined. */ -}}
{{- define "membership_drop_older"}}
delete from {{.Table}} u using {{.Schema}}.membership_state st
where st.clerk_id = u.{{.ClerkID}} and st.organization_id = $2 and st.user_id = $3 and st.clerk_id <> $1
  and (st.clerk_updated_at, st.clerk_id collate "C") < ($4::timestamptz, $1::text collate "C"){{end}}

{{- define "membership_members"}}
select st.clerk_id, st.user_id, st.role::text, st.clerk_updated_at
from {{.Schema}}.membership_state st join {{.Table}} u on u.{{.ClerkID}} = st.clerk_id
where st.organization_id = $1 order by st.user_id{{end}}

{{- define "membership_unseen"}}
select st.clerk_id, st.organization_id, st.user_id
from {{.Schema}}.membership_state st join {{.Table}} u on u.{{.ClerkID}} = st.clerk_id
where st.first_written_at < $2
  and exists (select 1 from {{.Schema}}.backfill_seen s where s.run = $1 and s.clerk_id = st.organization_id)
  and not exists (select 1 from {{.Schema}}.backfill_seen s where s.run = $1 and s.clerk_id = st.clerk_id)
order by st.organization_id, st.clerk_id{{end}}
