-- The statements clerksync builds for prisma (TestStatements_MatchTheGoldenSQL; -update-sql rewrites this file).

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
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:2d90a4ca04100b34' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:2d90a4ca04100b34' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "public"."User" u set
        "email" = coalesce(src."email", ''),
        "firstName" = src."first_name",
        "lastName" = src."last_name",
        "updatedAt" = (now() at time zone 'UTC'),
        "username" = src."username"
    from apply src
    where u."clerkId" = src.clerk_id
      and u."clerkId" = any (array(select clerk_id from apply))
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."User" as u ("clerkId", "id", "createdAt", "email", "firstName", "lastName", "updatedAt", "username")
    select src.clerk_id, gen_random_uuid()::text, (now() at time zone 'UTC'), coalesce(src."email", ''), src."first_name", src."last_name", (now() at time zone 'UTC'), src."username" from apply src
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerkId") do update set
        "email" = excluded."email",
        "firstName" = excluded."firstName",
        "lastName" = excluded."lastName",
        "updatedAt" = excluded."updatedAt",
        "username" = excluded."username"
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select
    coalesce((select id from written), (select "id"::text from "public"."User" where "clerkId" = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone);

-- users: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, null::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, null::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[]) as p(clerk_id, email, first_name, last_name, username, created_at, updated_at, content_hash)
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
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:2d90a4ca04100b34' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:2d90a4ca04100b34' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "public"."User" u set
        "email" = coalesce(src."email", ''),
        "firstName" = src."first_name",
        "lastName" = src."last_name",
        "updatedAt" = (now() at time zone 'UTC'),
        "username" = src."username"
    from apply src
    where u."clerkId" = src.clerk_id
      and u."clerkId" = any (array(select clerk_id from apply))
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."User" as u ("clerkId", "id", "createdAt", "email", "firstName", "lastName", "updatedAt", "username")
    select src.clerk_id, gen_random_uuid()::text, (now() at time zone 'UTC'), coalesce(src."email", ''), src."first_name", src."last_name", (now() at time zone 'UTC'), src."username" from apply src
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerkId") do update set
        "email" = excluded."email",
        "firstName" = excluded."firstName",
        "lastName" = excluded."lastName",
        "updatedAt" = excluded."updatedAt",
        "username" = excluded."username"
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
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
select u."id"::text, u."clerkId",
       jsonb_build_object('clerkId', u."clerkId", 'createdAt', u."createdAt", 'email', u."email", 'firstName', u."firstName", 'id', u."id", 'lastName', u."lastName", 'updatedAt', u."updatedAt", 'username', u."username") || jsonb_build_object('clerk_id', u."clerkId"),
       coalesce((select st.clerk_updated_at <= 'epoch' from clerksync.user_state st where st.clerk_id = u."clerkId"), false),
       exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerkId"),
       true
from "public"."User" u where u."clerkId" = $1;

-- users: remove
delete from "public"."User" u
where u."clerkId" = $1 and exists (select 1 from clerksync.user_tombstones where clerk_id = $1);

-- users: row left
select exists (select 1 from "public"."User" u where u."clerkId" = $1 and true);

-- users: count
select count(*) from "public"."User" u where true and u."clerkId" is not null;

-- users: unseen
select u."clerkId"::text
from "public"."User" u
where true and u."clerkId" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerkId" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerkId")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerkId")
  and u."clerkId" > $3
order by u."clerkId"
limit $4;

-- users: unseen count
select count(*)
from "public"."User" u
where true and u."clerkId" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerkId" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerkId")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerkId");

-- trials: grant
with granted as (
    update clerksync.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
insert into "public"."Subscription" ("userId", "plan", "status", "trialEndsAt", "id", "createdAt", "updatedAt")
select u."id", 'trial', 'trialing', ($2::timestamptz at time zone 'UTC'), gen_random_uuid()::text, (now() at time zone 'UTC'), (now() at time zone 'UTC') from granted g join "public"."User" u on u."clerkId" = g.clerk_id
where not exists (select 1 from "public"."Subscription" x where x."userId" = u."id")
on conflict do nothing
returning ("trialEndsAt" at time zone 'UTC');

-- trials: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, null::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, null::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[]) as p(clerk_id, email, first_name, last_name, username, created_at, updated_at, content_hash)
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
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:2d90a4ca04100b34' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection, trial_granted_at)
    select clerk_id, updated_at, content_hash, 'p1:2d90a4ca04100b34', case when grant_trial then now() end from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection,
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at)
),
updated as (
    update "public"."User" u set
        "email" = coalesce(src."email", ''),
        "firstName" = src."first_name",
        "lastName" = src."last_name",
        "updatedAt" = (now() at time zone 'UTC'),
        "username" = src."username"
    from apply src
    where u."clerkId" = src.clerk_id
      and u."clerkId" = any (array(select clerk_id from apply))
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."User" as u ("clerkId", "id", "createdAt", "email", "firstName", "lastName", "updatedAt", "username")
    select src.clerk_id, gen_random_uuid()::text, (now() at time zone 'UTC'), coalesce(src."email", ''), src."first_name", src."last_name", (now() at time zone 'UTC'), src."username" from apply src
    where (select true from "public"."User" x where x."clerkId" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerkId") do update set
        "email" = excluded."email",
        "firstName" = excluded."firstName",
        "lastName" = excluded."lastName",
        "updatedAt" = excluded."updatedAt",
        "username" = excluded."username"
    returning u."clerkId" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
), trial as (
    insert into "public"."Subscription" ("userId", "plan", "status", "trialEndsAt", "id", "createdAt", "updatedAt")
    select w.user_key, 'trial', 'trialing', (a.trial_ends at time zone 'UTC'), gen_random_uuid()::text, (now() at time zone 'UTC'), (now() at time zone 'UTC')
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and not exists (select 1 from "public"."Subscription" x where x."userId" = w.user_key)
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
update "public"."Subscription" set "status" = 'expired', "createdAt" = (now() at time zone 'UTC'), "updatedAt" = (now() at time zone 'UTC')
where "id" in (
    select "id" from "public"."Subscription"
    where "status" = 'trialing' and "plan" = 'trial' and "trialEndsAt" <= (now() at time zone 'UTC')
    order by "trialEndsAt"
    limit $1
    for update skip locked
);

-- trials: lookup
select s."status"::text, (s."trialEndsAt" at time zone 'UTC'), to_jsonb(s)
from "public"."Subscription" s join "public"."User" u on u."id" = s."userId"
where u."clerkId" = $1 and s."plan" = 'trial';

-- trials: due (the mapping's proof)
update "public"."Subscription" s set "trialEndsAt" = ((now() - interval '1 minute') at time zone 'UTC')
from "public"."User" u
where u."id" = s."userId" and u."clerkId" = $1 and s."plan" = 'trial';
