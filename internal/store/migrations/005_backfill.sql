-- The Clerk IDs a backfill or reconciliation run has seen in Clerk's listing,
-- so reconciliation can find the live users Clerk no longer lists. Unlogged:
-- a run that loses it in a crash lists again; it is deleted when the run ends.
create unlogged table backfill_seen (
    run      text not null,
    clerk_id text not null,
    primary key (run, clerk_id)
);

---- create above / drop below ----

drop table backfill_seen;
