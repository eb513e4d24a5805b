-- The version each organization's and membership's row was last written at,
-- whichever table holds it (clerksync's own, or the product's, mapped), as
-- user_state is for users: last-writer-wins compares (clerk_updated_at,
-- content_hash, or role for a membership). first_written_at tells reconciliation which rows are
-- younger than its listing.
create table {{.schema}}.organization_state (
    clerk_id         text primary key,
    clerk_updated_at timestamptz not null,
    content_hash     text collate "C" not null,
    first_written_at timestamptz not null default now()
);

-- A membership's state names its organization and user by Clerk ID, so the
-- rule "one membership per organization and user, the newer" holds
-- whatever the product's table keys them by: a user who leaves and rejoins
-- gets a new membership ID, and the older one's row goes.
create table {{.schema}}.membership_state (
    clerk_id         text primary key,
    organization_id  text not null,
    user_id          text not null,
    clerk_updated_at timestamptz not null,
    -- The tie-break of equal versions.
    role             text collate "C" not null,
    first_written_at timestamptz not null default now()
);

create index membership_state_pair_idx on {{.schema}}.membership_state (organization_id, user_id);

---- create above / drop below ----

drop table {{.schema}}.membership_state;
drop table {{.schema}}.organization_state;
