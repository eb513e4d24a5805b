{{/*
One row's statements, for users and organizations alike: its removal once
its deletion is recorded (.Tombstones, the entity's tombstone table), and
the links that give an app's row from before Clerk its Clerk ID. Slots
hold SQL: the quoted table (.Table) and Clerk ID column (.ClerkID), and the
expressions the compiler built.
*/}}
{{- define "hard_remove"}}delete from {{.Table}} u
where u.{{.ClerkID}} = $1 and exists (select 1 from {{.Tombstones}} where clerk_id = $1){{end}}

{{- /* soft_remove sets the deleted-at column and clears the personal ones (.Sets) of a row whose removal is .Pending. */ -}}
{{- define "soft_remove"}}update {{.Table}} u set {{join .Sets ", "}}
where u.{{.ClerkID}} = $1 and {{.Pending}}
  and exists (select 1 from {{.Tombstones}} where clerk_id = $1){{end}}

{{- /*
link gives the rows the app wrote before Clerk (no Clerk ID) the Clerk IDs
($1) of the users whose .By ($2: external_id or email) .Match finds,
none a user already holds (.Unheld).
*/ -}}
{{- define "link"}}
update {{.Table}} u set {{.ClerkID}} = p.clerk_id
from unnest($1::text[], $2::text[]) as p(clerk_id, {{.By}})
where u.{{.ClerkID}} is null and {{.Match}}
  and {{.Absent}}
  and (select true from {{.Schema}}.user_tombstones x where x.clerk_id = p.clerk_id) is null{{end}}
