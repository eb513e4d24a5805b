-- The statements clerksync builds for own (TestStatements_MatchTheGoldenSQL; -update-sql rewrites this file).

-- users: upsert
with tombstone as (
    select 1 from clerksync.user_tombstones where clerk_id = @clerk_id
), src as (
    select @clerk_id::text as clerk_id, @email::text as email, @first_name::text as first_name, @last_name::text as last_name, @username::text as username, @image_url::text as image_url, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @content_hash::text collate "C" as content_hash, @email_verified::boolean as email_verified, @email_addresses::jsonb as email_addresses, @phone::text as phone, @external_id::text as external_id, @public_metadata::jsonb as public_metadata, @private_metadata::jsonb as private_metadata, @unsafe_metadata::jsonb as unsafe_metadata, @last_sign_in_at::timestamptz as last_sign_in_at, @banned::boolean as banned, @locked::boolean as locked, @object::jsonb as object, @last_active_at::timestamptz as last_active_at, @deprovisioned::boolean as deprovisioned
    where not exists (select 1 from tombstone)
),
apply as materialized (
    select src.*
    from src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:d6d2a978c751066e' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:d6d2a978c751066e' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "users" u set
        "clerk_created_at" = coalesce(src."created_at", u."clerk_created_at"),
        "clerk_updated_at" = src."updated_at",
        "email" = src."email",
        "first_name" = src."first_name",
        "image_url" = src."image_url",
        "last_name" = src."last_name",
        "updated_at" = now(),
        "username" = src."username"
    from apply src
    where u."clerk_id" = src.clerk_id
      and u."clerk_id" = any (array(select clerk_id from apply))
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "users" as u ("clerk_id", "clerk_created_at", "clerk_updated_at", "email", "first_name", "image_url", "last_name", "updated_at", "username")
    select src.clerk_id, src."created_at", src."updated_at", src."email", src."first_name", src."image_url", src."last_name", now(), src."username" from apply src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_id") do update set
        "clerk_created_at" = coalesce(excluded."clerk_created_at", u."clerk_created_at"),
        "clerk_updated_at" = excluded."clerk_updated_at",
        "email" = excluded."email",
        "first_name" = excluded."first_name",
        "image_url" = excluded."image_url",
        "last_name" = excluded."last_name",
        "updated_at" = excluded."updated_at",
        "username" = excluded."username"
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select
    coalesce((select id from written), (select "id"::text from "users" where "clerk_id" = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone);

-- users: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, p.image_url::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, null::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @image_url::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[]) as p(clerk_id, email, first_name, last_name, username, image_url, created_at, updated_at, content_hash)
), checked as materialized (
    select p.*, (select true from clerksync.user_tombstones x where x.clerk_id = p.clerk_id) is null as live
    from page p
), src as materialized (
    select distinct on (p.clerk_id) p.*
    from checked p
    where p.live
    order by p.clerk_id, p.updated_at desc, p.content_hash desc
),
apply as materialized (
    select src.*
    from src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:d6d2a978c751066e' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:d6d2a978c751066e' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "users" u set
        "clerk_created_at" = coalesce(src."created_at", u."clerk_created_at"),
        "clerk_updated_at" = src."updated_at",
        "email" = src."email",
        "first_name" = src."first_name",
        "image_url" = src."image_url",
        "last_name" = src."last_name",
        "updated_at" = now(),
        "username" = src."username"
    from apply src
    where u."clerk_id" = src.clerk_id
      and u."clerk_id" = any (array(select clerk_id from apply))
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "users" as u ("clerk_id", "clerk_created_at", "clerk_updated_at", "email", "first_name", "image_url", "last_name", "updated_at", "username")
    select src.clerk_id, src."created_at", src."updated_at", src."email", src."first_name", src."image_url", src."last_name", now(), src."username" from apply src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_id") do update set
        "clerk_created_at" = coalesce(excluded."clerk_created_at", u."clerk_created_at"),
        "clerk_updated_at" = excluded."clerk_updated_at",
        "email" = excluded."email",
        "first_name" = excluded."first_name",
        "image_url" = excluded."image_url",
        "last_name" = excluded."last_name",
        "updated_at" = excluded."updated_at",
        "username" = excluded."username"
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select
    count(*) filter (where inserted),
    count(*) filter (where not inserted),
    (select count(*) from checked where not live),
    0
from written;

-- users: lookup
select u."id"::text, u."clerk_id",
       jsonb_build_object('clerk_created_at', u."clerk_created_at", 'clerk_id', u."clerk_id", 'clerk_updated_at', u."clerk_updated_at", 'created_at', u."created_at", 'email', u."email", 'first_name', u."first_name", 'id', u."id", 'image_url', u."image_url", 'last_name', u."last_name", 'updated_at', u."updated_at", 'username', u."username") || jsonb_build_object('clerk_id', u."clerk_id"),
       coalesce((select st.clerk_updated_at <= 'epoch' from clerksync.user_state st where st.clerk_id = u."clerk_id"), false),
       exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_id"),
       true
from "users" u where u."clerk_id" = $1;

-- users: remove
delete from "users" u
where u."clerk_id" = $1 and exists (select 1 from clerksync.user_tombstones where clerk_id = $1);

-- users: row left
select exists (select 1 from "users" u where u."clerk_id" = $1 and true);

-- users: count
select count(*) from "users" u where true and u."clerk_id" is not null;

-- users: unseen
select u."clerk_id"::text
from "users" u
where true and u."clerk_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_id")
  and u."clerk_id" > $3
order by u."clerk_id"
limit $4;

-- users: unseen count
select count(*)
from "users" u
where true and u."clerk_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_id");

-- trials: grant
with granted as (
    update clerksync.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
insert into "subscriptions" ("user_id", "plan", "status", "trial_ends_at", "updated_at")
select u."id", 'trial', 'trialing', $2::timestamptz, now() from granted g join "users" u on u."clerk_id" = g.clerk_id
where not exists (select 1 from "subscriptions" x where x."user_id" = u."id")
on conflict do nothing
returning "trial_ends_at";

-- trials: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, p.image_url::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, null::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @image_url::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[]) as p(clerk_id, email, first_name, last_name, username, image_url, created_at, updated_at, content_hash)
), checked as materialized (
    select p.*, (select true from clerksync.user_tombstones x where x.clerk_id = p.clerk_id) is null as live
    from page p
), src as materialized (
    select distinct on (p.clerk_id) p.*
    from checked p
    where p.live
    order by p.clerk_id, p.updated_at desc, p.content_hash desc
),
apply as materialized (
    select src.*,
           src.created_at + @trial_period::interval as trial_ends,
           src.created_at + @trial_period::interval > now()
               and (select st.trial_granted_at from clerksync.user_state st where st.clerk_id = src.clerk_id) is null as grant_trial
    from src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:d6d2a978c751066e' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection, trial_granted_at)
    select clerk_id, updated_at, content_hash, 'p1:d6d2a978c751066e', case when grant_trial then now() end from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection,
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at)
),
updated as (
    update "users" u set
        "clerk_created_at" = coalesce(src."created_at", u."clerk_created_at"),
        "clerk_updated_at" = src."updated_at",
        "email" = src."email",
        "first_name" = src."first_name",
        "image_url" = src."image_url",
        "last_name" = src."last_name",
        "updated_at" = now(),
        "username" = src."username"
    from apply src
    where u."clerk_id" = src.clerk_id
      and u."clerk_id" = any (array(select clerk_id from apply))
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "users" as u ("clerk_id", "clerk_created_at", "clerk_updated_at", "email", "first_name", "image_url", "last_name", "updated_at", "username")
    select src.clerk_id, src."created_at", src."updated_at", src."email", src."first_name", src."image_url", src."last_name", now(), src."username" from apply src
    where (select true from "users" x where x."clerk_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_id") do update set
        "clerk_created_at" = coalesce(excluded."clerk_created_at", u."clerk_created_at"),
        "clerk_updated_at" = excluded."clerk_updated_at",
        "email" = excluded."email",
        "first_name" = excluded."first_name",
        "image_url" = excluded."image_url",
        "last_name" = excluded."last_name",
        "updated_at" = excluded."updated_at",
        "username" = excluded."username"
    returning u."clerk_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
), trial as (
    insert into "subscriptions" ("user_id", "plan", "status", "trial_ends_at", "updated_at")
    select w.user_key, 'trial', 'trialing', a.trial_ends, now()
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and not exists (select 1 from "subscriptions" x where x."user_id" = w.user_key)
    on conflict do nothing
    returning 1
)
select
    count(*) filter (where inserted),
    count(*) filter (where not inserted),
    (select count(*) from checked where not live),
    (select count(*) from trial)
from written;

-- trials: expire
update "subscriptions" set "status" = 'expired', "updated_at" = now()
where "id" in (
    select "id" from "subscriptions"
    where "status" = 'trialing' and "plan" = 'trial' and "trial_ends_at" <= now()
    order by "trial_ends_at"
    limit $1
    for update skip locked
);

-- trials: lookup
select s."status"::text, s."trial_ends_at", to_jsonb(s)
from "subscriptions" s join "users" u on u."id" = s."user_id"
where u."clerk_id" = $1 and s."plan" = 'trial';

-- trials: due (the mapping's proof)
update "subscriptions" s set "trial_ends_at" = (now() - interval '1 minute')
from "users" u
where u."id" = s."user_id" and u."clerk_id" = $1 and s."plan" = 'trial';

-- organizations: upsert
with tombstone as (
    select 1 from clerksync.organization_tombstones where clerk_id = @clerk_id
), src as (
    select @clerk_id::text as clerk_id, @name::text as name, @slug::text as slug, @image_url::text as image_url, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @content_hash::text collate "C" as content_hash, @public_metadata::jsonb as public_metadata, @private_metadata::jsonb as private_metadata
    where not exists (select 1 from tombstone)
), apply as materialized (
    select src.* from src
    where not exists (select 1 from "organizations" u where u."clerk_id" = src.clerk_id)
       or not exists (
           select 1 from clerksync.organization_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:9627a4090a882f04' or st.clerk_updated_at > src.updated_at))
), state as (
    insert into clerksync.organization_state (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:9627a4090a882f04' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "organizations" u set
        "clerk_created_at" = coalesce(src."created_at", u."clerk_created_at"),
        "clerk_updated_at" = src."updated_at",
        "image_url" = src."image_url",
        "name" = src."name",
        "slug" = src."slug",
        "updated_at" = now()
    from apply src
    where u."clerk_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "organizations" as u ("clerk_id", "clerk_created_at", "clerk_updated_at", "image_url", "name", "slug", "updated_at")
    select src.clerk_id, src."created_at", src."updated_at", src."image_url", src."name", src."slug", now() from apply src
    where (select true from "organizations" x where x."clerk_id" = src.clerk_id) is null
    on conflict ("clerk_id") do update set
        "clerk_created_at" = coalesce(excluded."clerk_created_at", u."clerk_created_at"),
        "clerk_updated_at" = excluded."clerk_updated_at",
        "image_url" = excluded."image_url",
        "name" = excluded."name",
        "slug" = excluded."slug",
        "updated_at" = excluded."updated_at"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written), exists (select 1 from tombstone),
       exists (select 1 from tombstone) and exists (select 1 from "organizations" u where u."clerk_id" = @clerk_id and true);

-- organizations: lookup
select u."id"::text, to_jsonb(u) || jsonb_build_object('clerk_id', u."clerk_id")
from "organizations" u where u."clerk_id" = $1 and true;

-- organizations: remove
delete from "organizations" u
where u."clerk_id" = $1 and exists (select 1 from clerksync.organization_tombstones where clerk_id = $1);

-- organizations: row left
exists (select 1 from "organizations" u where u."clerk_id" = $1 and true);

-- organizations: unseen
select u."clerk_id"::text from "organizations" u
where true
  and not exists (select 1 from clerksync.organization_state st where st.clerk_id = u."clerk_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_id")
  and not exists (select 1 from clerksync.organization_tombstones t where t.clerk_id = u."clerk_id")
order by 1;

-- memberships: upsert
with src as (
    select @clerk_id::text as clerk_id, @organization_id::text as organization_id, @user_id::text as user_id, @role::text collate "C" as role, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @permissions::jsonb as permissions, @public_metadata::jsonb as public_metadata
), apply as materialized (
    select src.*, o."id" as org_key, mu."id" as user_key
    from src
    join "organizations" o on o."clerk_id" = src.organization_id
    join "users" mu on mu."clerk_id" = src.user_id
    where not exists (
    select 1 from clerksync.membership_state st join "organization_memberships" u on u."clerk_id" = st.clerk_id
    where st.organization_id = src.organization_id and st.user_id = src.user_id and st.clerk_id <> src.clerk_id
      and (st.clerk_updated_at, st.clerk_id collate "C") > (src.updated_at, src.clerk_id collate "C"))
      and (not exists (select 1 from "organization_memberships" u where u."clerk_id" = src.clerk_id)
           or not exists (
               select 1 from clerksync.membership_state st
               where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.role) >= (src.updated_at, src.role)
             and (st.projection = 'p1:97322b4f5df0757b' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.membership_state (clerk_id, organization_id, user_id, clerk_updated_at, role, projection)
    select clerk_id, organization_id, user_id, updated_at, role, 'p1:97322b4f5df0757b' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        role             = excluded.role,
        projection       = excluded.projection
),
updated as (
    update "organization_memberships" u set
        "clerk_created_at" = coalesce(src."created_at", u."clerk_created_at"),
        "clerk_updated_at" = src."updated_at",
        "role" = src."role",
        "updated_at" = now()
    from apply src
    where u."clerk_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "organization_memberships" as u ("clerk_id", "organization_id", "user_id", "clerk_created_at", "clerk_updated_at", "role", "updated_at")
    select src.clerk_id, src.org_key, src.user_key, src."created_at", src."updated_at", src."role", now() from apply src
    where (select true from "organization_memberships" x where x."clerk_id" = src.clerk_id) is null
    on conflict ("clerk_id") do update set
        "clerk_created_at" = coalesce(excluded."clerk_created_at", u."clerk_created_at"),
        "clerk_updated_at" = excluded."clerk_updated_at",
        "role" = excluded."role",
        "updated_at" = excluded."updated_at",
        "clerk_id" = excluded."clerk_id"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written);

-- memberships: drop older
delete from "organization_memberships" u using clerksync.membership_state st
where st.clerk_id = u."clerk_id" and st.organization_id = $2 and st.user_id = $3 and st.clerk_id <> $1
  and (st.clerk_updated_at, st.clerk_id collate "C") < ($4::timestamptz, $1::text collate "C");

-- memberships: remove
delete from "organization_memberships" u
where u."clerk_id" = $1 and exists (select 1 from clerksync.organization_membership_tombstones where clerk_id = $1);

-- memberships: row left
exists (select 1 from "organization_memberships" u where u."clerk_id" = $1);

-- memberships: members
select st.clerk_id, st.user_id, st.role::text, st.clerk_updated_at
from clerksync.membership_state st join "organization_memberships" u on u."clerk_id" = st.clerk_id
where st.organization_id = $1 order by st.user_id;

-- memberships: unseen
select st.clerk_id, st.organization_id, st.user_id
from clerksync.membership_state st join "organization_memberships" u on u."clerk_id" = st.clerk_id
where st.first_written_at < $2
  and exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.organization_id)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.clerk_id)
order by st.organization_id, st.clerk_id;
