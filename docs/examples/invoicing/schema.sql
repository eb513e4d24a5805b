-- An invoicing app as Drizzle would make it: tables in a schema of their
-- own (app), an integer identity key, a Clerk ID column that is unique but
-- nullable (rows from before Clerk have none), an email the app requires
-- and keeps unique case-insensitively (citext), a role the app checks, soft
-- deletion, billing rows (paid plans beside the trials clerksync grants),
-- and workspaces (Clerk's organizations) whose members' role is an enum,
-- as Drizzle's pgEnum makes it. The database runs in Asia/Kolkata. clerksync.yaml beside this
-- file maps Clerk's users and their trials onto it; its constraints are
-- the ones docs/adopting.md's "When your table refuses a user" is about.

create extension if not exists citext;
create schema app;

create table app.users (
    id            integer generated always as identity primary key,
    clerk_user_id text unique,
    email         citext not null unique,
    full_name     text,
    role          text not null default 'member' check (role in ('member', 'admin', 'owner')),
    -- Kept by the app, never mapped: ensure never answers it.
    password_hash text,
    admin_note    text,
    deleted_at    timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

-- A user's billing: a paid plan, or the trial clerksync gives at signup.
create table app.subscriptions (
    id         integer generated always as identity primary key,
    user_id    integer not null unique references app.users (id) on delete cascade,
    plan       text not null,
    status     text not null check (status in ('trialing', 'active', 'canceled', 'expired')),
    ends_at    timestamptz,
    updated_at timestamptz not null default now()
);

-- Invoices reference their user without a cascade: a soft deletion keeps
-- them attached.
create table app.invoices (
    id       integer generated always as identity primary key,
    user_id  integer not null references app.users (id),
    total    numeric(12, 2) not null
);

-- Clerk's organizations are workspaces; their members' role is the app's
-- enum of Clerk's role keys.
create type app.workspace_role as enum ('org:admin', 'org:member');

create table app.workspaces (
    id           integer generated always as identity primary key,
    clerk_org_id text not null unique,
    name         text not null,
    updated_at   timestamptz not null default now()
);

create table app.workspace_members (
    id                  integer generated always as identity primary key,
    clerk_membership_id text not null unique,
    workspace_id        integer not null references app.workspaces (id) on delete cascade,
    user_id             integer not null references app.users (id) on delete cascade,
    role                app.workspace_role not null,
    joined_at           timestamptz,
    unique (workspace_id, user_id)
);
