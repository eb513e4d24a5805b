-- Organizations' and memberships' versions move to the bookkeeping schema
-- (organization_state, membership_state), where a mapped product table's
-- are too: one write path for both.

insert into {{.schema}}.organization_state (clerk_id, clerk_updated_at, content_hash, first_written_at)
select clerk_id, clerk_updated_at, content_hash, created_at from organizations
on conflict (clerk_id) do nothing;

insert into {{.schema}}.membership_state (clerk_id, organization_id, user_id, clerk_updated_at, role, first_written_at)
select m.clerk_id, o.clerk_id, u.clerk_id, m.clerk_updated_at, m.role, m.created_at
from organization_memberships m join organizations o on o.id = m.organization_id join users u on u.id = m.user_id
on conflict (clerk_id) do nothing;

alter table organizations drop column content_hash;

---- create above / drop below ----

alter table organizations add column content_hash text collate "C" not null default '';
