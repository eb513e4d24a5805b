-- Erasure of deleted users' and organizations' workflow histories from
-- Temporal (ERASE_DELETED_HISTORIES): a sweep deletes every closed run of
-- a tombstoned entity's workflow once none of them runs. erase_requested_at
-- is when the entity last needed one: its deletion, and the end of every
-- later run (a late event refused by the tombstone still leaves a run).
-- erased_at is when the sweep last listed the entity's runs and found none
-- running; an entity is pending while erased_at is older than the request.
alter table {{.schema}}.user_tombstones
    add column erase_requested_at timestamptz not null default now(),
    add column erased_at timestamptz;

alter table {{.schema}}.organization_tombstones
    add column erase_requested_at timestamptz not null default now(),
    add column erased_at timestamptz;

create index user_tombstones_erasure_idx on {{.schema}}.user_tombstones (erase_requested_at, clerk_id)
    where erased_at is null or erased_at < erase_requested_at;

create index organization_tombstones_erasure_idx on {{.schema}}.organization_tombstones (erase_requested_at, clerk_id)
    where erased_at is null or erased_at < erase_requested_at;

---- create above / drop below ----

drop index {{.schema}}.organization_tombstones_erasure_idx;
drop index {{.schema}}.user_tombstones_erasure_idx;
alter table {{.schema}}.organization_tombstones drop column erased_at, drop column erase_requested_at;
alter table {{.schema}}.user_tombstones drop column erased_at, drop column erase_requested_at;
