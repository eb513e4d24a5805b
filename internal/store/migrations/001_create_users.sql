-- The table contract of DESIGN.md: the product's own tables reference
-- users(id), so these names and meanings are public.

create table users (
    id               uuid primary key default gen_random_uuid(),
    clerk_id         text not null unique,
    -- NULL, never '', when Clerk has no primary email.
    email            text check (email <> ''),
    first_name       text,
    last_name        text,
    username         text,
    image_url        text,
    clerk_created_at timestamptz,
    -- Clerk's updated_at: the version that last-writer-wins compares.
    clerk_updated_at timestamptz not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);

-- A deleted Clerk user stays deleted: Clerk never reuses an ID, so a tombstone
-- refuses every later write for it.
create table user_tombstones (
    clerk_id   text primary key,
    deleted_at timestamptz not null default now()
);

create table subscriptions (
    id            uuid primary key default gen_random_uuid(),
    user_id       uuid not null references users(id) on delete cascade,
    plan          text not null,
    status        text not null check (status in ('trialing', 'active', 'expired', 'canceled')),
    trial_ends_at timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

-- Serves the cascade from users and the product's lookups by user.
create index subscriptions_user_id_idx on subscriptions (user_id);

---- create above / drop below ----

drop table subscriptions;
drop table user_tombstones;
drop table users;
