{{/*
write: the CTEs that write apply's rows (as src) into the table, ending in
written. A row its Clerk ID column holds is updated; only the absent ones
reach the insert. Slots: .Table and .ClerkID (quoted), .Updates, .Sets,
.InsertCols, .InsertVals (SQL from the compiler's helpers), .Returning
(columns, each followed by a comma), .Absent (the absence test of
src.clerk_id), .Page (a write of many rows).
*/}}
{{- define "write"}}
updated as (
    update {{.Table}} u set
        {{join .Updates ",\n        "}}
    from apply src
    where u.{{.ClerkID}} = src.clerk_id{{if .Page}}
      and u.{{.ClerkID}} = any (array(select clerk_id from apply)){{end}}
    returning {{.Returning}}false as inserted
), inserted as (
    insert into {{.Table}} as u ({{join .InsertCols ", "}})
    select {{join .InsertVals ", "}} from apply src
    where {{.Absent}}{{if .Page}}
    order by src.clerk_id{{end}}
    on conflict ({{.ClerkID}}) do update set
        {{join .Sets ",\n        "}}
    returning {{.Returning}}xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
){{end}}
