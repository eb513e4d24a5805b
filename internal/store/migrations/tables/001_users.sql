-- The tables clerksync creates and owns when no mapping names the product's
-- own (CLERKSYNC_MAPPING), in the schema DATABASE_URL's search_path puts
-- first: the table contract of docs/integrating.md. The product's own tables
-- reference users(id), so these names and meanings are public.

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
    -- Clerk's updated_at: the version last written (the epoch for a minimal
    -- row, the Clerk ID alone, before clerksync has the user's data).
    clerk_updated_at timestamptz not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
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

-- A user has at most one subscription per plan: a second trial insert (a
-- webhook retry, an ensure, a backfill racing) is impossible, not just
-- unlikely. It also serves the cascade from users and lookups by user.
create unique index subscriptions_user_id_plan_key on subscriptions (user_id, plan);

-- The expiry schedule finds due trials by this index, not by a scan.
create index subscriptions_trialing_ends_idx on subscriptions (trial_ends_at)
    where status = 'trialing';

---- create above / drop below ----

drop table subscriptions;
drop table users;
