-- Organizations and memberships, a public contract like users: a product's
-- tables reference organizations(id) and organization_memberships(id).

create table organizations (
    id               uuid primary key default gen_random_uuid(),
    clerk_id         text not null unique,
    name             text,
    slug             text,
    image_url        text,
    clerk_created_at timestamptz,
    -- Clerk's updated_at: the version that last-writer-wins compares.
    clerk_updated_at timestamptz not null,
    -- Tie-break for equal versions, as users.content_hash.
    content_hash     text collate "C" not null default '',
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);

create table organization_memberships (
    id               uuid primary key default gen_random_uuid(),
    -- Clerk's orgmem_ ID. A user who leaves and rejoins gets a new one; the
    -- row then holds the newer membership.
    clerk_id         text not null unique,
    organization_id  uuid not null references organizations(id) on delete cascade,
    user_id          uuid not null references users(id) on delete cascade,
    role             text not null,
    clerk_created_at timestamptz,
    clerk_updated_at timestamptz not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (organization_id, user_id)
);

-- Serves the cascade from users and the product's lookups by user.
create index organization_memberships_user_id_idx on organization_memberships (user_id);

---- create above / drop below ----

drop table organization_memberships;
drop table organizations;
