-- clerksync's bookkeeping: what it needs to keep the product's rows right,
-- in a schema of its own (CLERKSYNC_SCHEMA, "clerksync" by default) so that
-- it never adds a table or a column to the product's schema, whose tables it
-- may only map (a product's migration tool would report them as drift).
-- {{.schema}} is that schema, created by Store.Migrate before this runs.

-- A deleted Clerk object stays deleted: Clerk never reuses an ID, so a
-- tombstone refuses every later write for it.
create table {{.schema}}.user_tombstones (
    clerk_id   text primary key,
    deleted_at timestamptz not null default now()
);

create table {{.schema}}.organization_tombstones (
    clerk_id   text primary key,
    deleted_at timestamptz not null default now()
);

create table {{.schema}}.organization_membership_tombstones (
    clerk_id   text primary key,
    deleted_at timestamptz not null default now()
);

-- The version each user's row was last written at, whichever table holds the
-- row: last-writer-wins compares (clerk_updated_at, content_hash), so every
-- order of arrival keeps the same payload (two payloads can carry the same
-- millisecond updated_at; the greater hash wins). Collation "C" makes the
-- comparison bytewise, the same as Go's string comparison in the workflow.
-- trial_granted_at records that the user was given its trial, once ever, so
-- a product that deletes a subscription row does not hand out a second one.
-- first_written_at tells reconciliation which rows are younger than its
-- listing (a row of the product's that clerksync never wrote has no state).
create table {{.schema}}.user_state (
    clerk_id         text primary key,
    clerk_updated_at timestamptz not null,
    content_hash     text collate "C" not null,
    trial_granted_at timestamptz,
    first_written_at timestamptz not null default now()
);

-- The Clerk IDs a backfill or reconciliation run has seen in Clerk's listing,
-- so reconciliation can find the live users Clerk no longer lists. Unlogged:
-- a run that loses it in a crash lists again; it is deleted when the run ends.
create unlogged table {{.schema}}.backfill_seen (
    run      text not null,
    clerk_id text not null,
    primary key (run, clerk_id)
);

-- The Clerk instance this database is kept in step with, recorded by the
-- first backfill or reconciliation (GET /v1/instance). A later run whose
-- CLERK_SECRET_KEY belongs to another instance (a staging key in
-- production) refuses before it writes or removes anything: that key's
-- Clerk has none of these users, and a reconciliation would take every one
-- of them for deleted. One row at most.
create table {{.schema}}.clerk_instance (
    singleton   boolean primary key default true check (singleton),
    instance_id text not null,
    recorded_at timestamptz not null default now()
);

---- create above / drop below ----

drop table {{.schema}}.clerk_instance;
drop table {{.schema}}.backfill_seen;
drop table {{.schema}}.user_state;
drop table {{.schema}}.organization_membership_tombstones;
drop table {{.schema}}.organization_tombstones;
drop table {{.schema}}.user_tombstones;
