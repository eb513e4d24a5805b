{{/*
The statements on clerksync's bookkeeping tables, whatever the mapping:
rendered once per store for its bookkeeping schema (.Schema,
CLERKSYNC_SCHEMA), and, for the statements of one entity's tombstones,
once per entity (.Tombstones, qualified).
*/}}
{{- define "mark_seen"}}
insert into {{.Schema}}.backfill_seen (run, clerk_id) select $1, unnest($2::text[])
on conflict do nothing{{end}}

{{- define "forget_run"}}delete from {{.Schema}}.backfill_seen where run = $1{{end}}

{{- define "seen_runs"}}select distinct run from {{.Schema}}.backfill_seen order by run{{end}}

{{- /* record_instance records the Clerk instance $1 unless one is, and answers the one recorded. */ -}}
{{- define "record_instance"}}
with inserted as (
    insert into {{.Schema}}.clerk_instance (instance_id) values ($1) on conflict (singleton) do nothing returning instance_id
)
select instance_id from inserted union all select instance_id from {{.Schema}}.clerk_instance limit 1{{end}}

{{- define "recorded_instance"}}select coalesce((select instance_id from {{.Schema}}.clerk_instance), ''){{end}}

{{- /* membership_refusal says which deletion, if any, refuses a membership ($1) of an organization ($2) and a user ($3): its own first. */ -}}
{{- define "membership_refusal"}}
select case
    when exists (select 1 from {{.Schema}}.organization_membership_tombstones where clerk_id = $1) then 'membership'
    when exists (select 1 from {{.Schema}}.organization_tombstones where clerk_id = $2) then 'organization'
    when exists (select 1 from {{.Schema}}.user_tombstones where clerk_id = $3) then 'user'
    else '' end{{end}}

{{- define "deleted"}}select exists (select 1 from {{.Tombstones}} where clerk_id = $1){{end}}

{{- define "tombstone"}}insert into {{.Tombstones}} (clerk_id, deleted_at) values ($1, $2) on conflict (clerk_id) do nothing{{end}}

{{- define "request_erasure"}}update {{.Tombstones}} set erase_requested_at = now() where clerk_id = $1{{end}}

{{- /* pending_erasures: up to $4 erasures requested at least $1 seconds ago and not done since, after ($2, $3). */ -}}
{{- define "pending_erasures"}}
select clerk_id, erase_requested_at, now() from {{.Tombstones}}
where (erased_at is null or erased_at < erase_requested_at)
  and erase_requested_at < now() - $1 * interval '1 second'
  and (erase_requested_at, clerk_id) > ($2, $3)
order by erase_requested_at, clerk_id
limit $4{{end}}

{{- define "mark_erased"}}update {{.Tombstones}} set erased_at = greatest(erased_at, $2) where clerk_id = $1{{end}}

{{- define "erasure_of"}}
select erase_requested_at, erased_at, erased_at is null or erased_at < erase_requested_at
from {{.Tombstones}} where clerk_id = $1{{end}}
