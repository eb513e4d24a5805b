-- Which projection each row was last written under: a hash of the
-- statement that writes Clerk's object into the row, so of the mapping
-- (its columns, sources, defaults). A write of the version already
-- recorded is a duplicate only under the same projection; under another
-- (a column added to the mapping) it rewrites the row, so the next
-- backfill re-projects every row onto the new mapping. NULL (rows written
-- before this column, or by v0.1.0 during a roll-out) is no projection:
-- the next write of the same version rewrites the row once.
alter table {{.schema}}.user_state add column projection text;
alter table {{.schema}}.organization_state add column projection text;
alter table {{.schema}}.membership_state add column projection text;

---- create above / drop below ----

alter table {{.schema}}.membership_state drop column projection;
alter table {{.schema}}.organization_state drop column projection;
alter table {{.schema}}.user_state drop column projection;
