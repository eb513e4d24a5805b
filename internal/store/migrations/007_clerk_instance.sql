-- The Clerk instance this database is kept in step with, recorded by the
-- first backfill or reconciliation (GET /v1/instance). A later run whose
-- CLERK_SECRET_KEY belongs to another instance (a staging key in
-- production) refuses before it writes or removes anything: that key's
-- Clerk has none of these users, and a reconciliation would take every one
-- of them for deleted. One row at most.
create table clerk_instance (
    singleton   boolean primary key default true check (singleton),
    instance_id text not null,
    recorded_at timestamptz not null default now()
);

---- create above / drop below ----

drop table clerk_instance;
