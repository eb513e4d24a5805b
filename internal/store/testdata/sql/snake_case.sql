-- The statements clerksync builds for snake_case (TestStatements_MatchTheGoldenSQL; -update-sql rewrites this file).

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
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:c917f3c7918a2759' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:c917f3c7918a2759' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "public"."app_users" u set
        "all_emails" = src."email_addresses",
        "avatar_url" = src."image_url",
        "banned" = src."banned",
        "clerk_updated_ms" = (extract(epoch from src."updated_at") * 1000)::bigint,
        "email_address" = src."email",
        "email_verified" = src."email_verified",
        "external_ref" = src."external_id",
        "family_name" = src."last_name",
        "given_name" = src."first_name",
        "handle" = src."username",
        "last_seen_at" = src."last_sign_in_at",
        "phone" = src."phone",
        "profile" = src."object",
        "role" = (src."public_metadata" #>> '{"role"}'),
        "settings" = coalesce(src."unsafe_metadata", '{}'),
        "signed_up_at" = coalesce((src."created_at" at time zone 'UTC'), u."signed_up_at"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."app_users" as u ("clerk_user_id", "all_emails", "avatar_url", "banned", "clerk_updated_ms", "email_address", "email_verified", "external_ref", "family_name", "given_name", "handle", "last_seen_at", "phone", "profile", "role", "settings", "signed_up_at", "updated_at")
    select src.clerk_id, src."email_addresses", src."image_url", src."banned", (extract(epoch from src."updated_at") * 1000)::bigint, src."email", src."email_verified", src."external_id", src."last_name", src."first_name", src."username", src."last_sign_in_at", src."phone", src."object", (src."public_metadata" #>> '{"role"}'), coalesce(src."unsafe_metadata", '{}'), (src."created_at" at time zone 'UTC'), now() from apply src
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "all_emails" = excluded."all_emails",
        "avatar_url" = excluded."avatar_url",
        "banned" = excluded."banned",
        "clerk_updated_ms" = excluded."clerk_updated_ms",
        "email_address" = excluded."email_address",
        "email_verified" = excluded."email_verified",
        "external_ref" = excluded."external_ref",
        "family_name" = excluded."family_name",
        "given_name" = excluded."given_name",
        "handle" = excluded."handle",
        "last_seen_at" = excluded."last_seen_at",
        "phone" = excluded."phone",
        "profile" = excluded."profile",
        "role" = excluded."role",
        "settings" = excluded."settings",
        "signed_up_at" = coalesce(excluded."signed_up_at", u."signed_up_at"),
        "updated_at" = excluded."updated_at"
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select
    coalesce((select id from written), (select "id"::text from "public"."app_users" where "clerk_user_id" = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone);

-- users: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, p.image_url::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, p.email_verified::boolean as email_verified, p.email_addresses::jsonb as email_addresses, p.phone::text as phone, p.external_id::text as external_id, p.public_metadata::jsonb as public_metadata, null::jsonb as private_metadata, p.unsafe_metadata::jsonb as unsafe_metadata, p.last_sign_in_at::timestamptz as last_sign_in_at, p.banned::boolean as banned, null::boolean as locked, p.object::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @image_url::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[], @email_verified::boolean[], @email_addresses::text[], @phone::text[], @external_id::text[], @public_metadata::text[], @unsafe_metadata::text[], @last_sign_in_at::timestamptz[], @banned::boolean[], @object::text[]) as p(clerk_id, email, first_name, last_name, username, image_url, created_at, updated_at, content_hash, email_verified, email_addresses, phone, external_id, public_metadata, unsafe_metadata, last_sign_in_at, banned, object)
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
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:c917f3c7918a2759' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:c917f3c7918a2759' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "public"."app_users" u set
        "all_emails" = src."email_addresses",
        "avatar_url" = src."image_url",
        "banned" = src."banned",
        "clerk_updated_ms" = (extract(epoch from src."updated_at") * 1000)::bigint,
        "email_address" = src."email",
        "email_verified" = src."email_verified",
        "external_ref" = src."external_id",
        "family_name" = src."last_name",
        "given_name" = src."first_name",
        "handle" = src."username",
        "last_seen_at" = src."last_sign_in_at",
        "phone" = src."phone",
        "profile" = src."object",
        "role" = (src."public_metadata" #>> '{"role"}'),
        "settings" = coalesce(src."unsafe_metadata", '{}'),
        "signed_up_at" = coalesce((src."created_at" at time zone 'UTC'), u."signed_up_at"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."app_users" as u ("clerk_user_id", "all_emails", "avatar_url", "banned", "clerk_updated_ms", "email_address", "email_verified", "external_ref", "family_name", "given_name", "handle", "last_seen_at", "phone", "profile", "role", "settings", "signed_up_at", "updated_at")
    select src.clerk_id, src."email_addresses", src."image_url", src."banned", (extract(epoch from src."updated_at") * 1000)::bigint, src."email", src."email_verified", src."external_id", src."last_name", src."first_name", src."username", src."last_sign_in_at", src."phone", src."object", (src."public_metadata" #>> '{"role"}'), coalesce(src."unsafe_metadata", '{}'), (src."created_at" at time zone 'UTC'), now() from apply src
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "all_emails" = excluded."all_emails",
        "avatar_url" = excluded."avatar_url",
        "banned" = excluded."banned",
        "clerk_updated_ms" = excluded."clerk_updated_ms",
        "email_address" = excluded."email_address",
        "email_verified" = excluded."email_verified",
        "external_ref" = excluded."external_ref",
        "family_name" = excluded."family_name",
        "given_name" = excluded."given_name",
        "handle" = excluded."handle",
        "last_seen_at" = excluded."last_seen_at",
        "phone" = excluded."phone",
        "profile" = excluded."profile",
        "role" = excluded."role",
        "settings" = excluded."settings",
        "signed_up_at" = coalesce(excluded."signed_up_at", u."signed_up_at"),
        "updated_at" = excluded."updated_at"
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
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
select u."id"::text, u."clerk_user_id",
       jsonb_build_object('all_emails', u."all_emails", 'avatar_url', u."avatar_url", 'banned', u."banned", 'clerk_updated_ms', u."clerk_updated_ms", 'clerk_user_id', u."clerk_user_id", 'email_address', u."email_address", 'email_verified', u."email_verified", 'external_ref', u."external_ref", 'family_name', u."family_name", 'given_name', u."given_name", 'handle', u."handle", 'id', u."id", 'last_seen_at', u."last_seen_at", 'phone', u."phone", 'role', u."role", 'settings', u."settings", 'signed_up_at', u."signed_up_at", 'updated_at', u."updated_at") || jsonb_build_object('clerk_id', u."clerk_user_id"),
       coalesce((select st.clerk_updated_at <= 'epoch' from clerksync.user_state st where st.clerk_id = u."clerk_user_id"), false),
       exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id"),
       (u."deleted_at" is null or u."email_address" is distinct from null or u."given_name" is distinct from null or u."family_name" is distinct from null or u."handle" is distinct from null or u."avatar_url" is distinct from null or u."phone" is distinct from null or u."all_emails" is distinct from null or u."external_ref" is distinct from null or u."settings" is distinct from '{}' or u."profile" is distinct from null)
from "public"."app_users" u where u."clerk_user_id" = $1;

-- users: remove
update "public"."app_users" u set "deleted_at" = coalesce(u."deleted_at", now()), "email_address" = null, "given_name" = null, "family_name" = null, "handle" = null, "avatar_url" = null, "phone" = null, "all_emails" = null, "external_ref" = null, "settings" = '{}', "profile" = null, "updated_at" = now()
where u."clerk_user_id" = $1 and (u."deleted_at" is null or u."email_address" is distinct from null or u."given_name" is distinct from null or u."family_name" is distinct from null or u."handle" is distinct from null or u."avatar_url" is distinct from null or u."phone" is distinct from null or u."all_emails" is distinct from null or u."external_ref" is distinct from null or u."settings" is distinct from '{}' or u."profile" is distinct from null)
  and exists (select 1 from clerksync.user_tombstones where clerk_id = $1);

-- users: row left
select exists (select 1 from "public"."app_users" u where u."clerk_user_id" = $1 and (u."deleted_at" is null or u."email_address" is distinct from null or u."given_name" is distinct from null or u."family_name" is distinct from null or u."handle" is distinct from null or u."avatar_url" is distinct from null or u."phone" is distinct from null or u."all_emails" is distinct from null or u."external_ref" is distinct from null or u."settings" is distinct from '{}' or u."profile" is distinct from null));

-- users: count
select count(*) from "public"."app_users" u where u."deleted_at" is null and u."clerk_user_id" is not null;

-- users: unseen
select u."clerk_user_id"::text
from "public"."app_users" u
where u."deleted_at" is null and u."clerk_user_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_user_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_user_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id")
  and u."clerk_user_id" > $3
order by u."clerk_user_id"
limit $4;

-- users: unseen count
select count(*)
from "public"."app_users" u
where u."deleted_at" is null and u."clerk_user_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_user_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_user_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id");

-- trials: grant
with granted as (
    update clerksync.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
insert into "public"."trials" ("user_id", "plan", "state", "ends_at", "touched")
select u."id", 'trial', 'trialing', $2::timestamptz, now() from granted g join "public"."app_users" u on u."clerk_user_id" = g.clerk_id
where not exists (select 1 from "public"."trials" x where x."user_id" = u."id")
on conflict do nothing
returning "ends_at";

-- trials: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, p.username::text as username, p.image_url::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, p.email_verified::boolean as email_verified, p.email_addresses::jsonb as email_addresses, p.phone::text as phone, p.external_id::text as external_id, p.public_metadata::jsonb as public_metadata, null::jsonb as private_metadata, p.unsafe_metadata::jsonb as unsafe_metadata, p.last_sign_in_at::timestamptz as last_sign_in_at, p.banned::boolean as banned, null::boolean as locked, p.object::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @username::text[], @image_url::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[], @email_verified::boolean[], @email_addresses::text[], @phone::text[], @external_id::text[], @public_metadata::text[], @unsafe_metadata::text[], @last_sign_in_at::timestamptz[], @banned::boolean[], @object::text[]) as p(clerk_id, email, first_name, last_name, username, image_url, created_at, updated_at, content_hash, email_verified, email_addresses, phone, external_id, public_metadata, unsafe_metadata, last_sign_in_at, banned, object)
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
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:c917f3c7918a2759' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection, trial_granted_at)
    select clerk_id, updated_at, content_hash, 'p1:c917f3c7918a2759', case when grant_trial then now() end from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection,
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at)
),
updated as (
    update "public"."app_users" u set
        "all_emails" = src."email_addresses",
        "avatar_url" = src."image_url",
        "banned" = src."banned",
        "clerk_updated_ms" = (extract(epoch from src."updated_at") * 1000)::bigint,
        "email_address" = src."email",
        "email_verified" = src."email_verified",
        "external_ref" = src."external_id",
        "family_name" = src."last_name",
        "given_name" = src."first_name",
        "handle" = src."username",
        "last_seen_at" = src."last_sign_in_at",
        "phone" = src."phone",
        "profile" = src."object",
        "role" = (src."public_metadata" #>> '{"role"}'),
        "settings" = coalesce(src."unsafe_metadata", '{}'),
        "signed_up_at" = coalesce((src."created_at" at time zone 'UTC'), u."signed_up_at"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "public"."app_users" as u ("clerk_user_id", "all_emails", "avatar_url", "banned", "clerk_updated_ms", "email_address", "email_verified", "external_ref", "family_name", "given_name", "handle", "last_seen_at", "phone", "profile", "role", "settings", "signed_up_at", "updated_at")
    select src.clerk_id, src."email_addresses", src."image_url", src."banned", (extract(epoch from src."updated_at") * 1000)::bigint, src."email", src."email_verified", src."external_id", src."last_name", src."first_name", src."username", src."last_sign_in_at", src."phone", src."object", (src."public_metadata" #>> '{"role"}'), coalesce(src."unsafe_metadata", '{}'), (src."created_at" at time zone 'UTC'), now() from apply src
    where (select true from "public"."app_users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "all_emails" = excluded."all_emails",
        "avatar_url" = excluded."avatar_url",
        "banned" = excluded."banned",
        "clerk_updated_ms" = excluded."clerk_updated_ms",
        "email_address" = excluded."email_address",
        "email_verified" = excluded."email_verified",
        "external_ref" = excluded."external_ref",
        "family_name" = excluded."family_name",
        "given_name" = excluded."given_name",
        "handle" = excluded."handle",
        "last_seen_at" = excluded."last_seen_at",
        "phone" = excluded."phone",
        "profile" = excluded."profile",
        "role" = excluded."role",
        "settings" = excluded."settings",
        "signed_up_at" = coalesce(excluded."signed_up_at", u."signed_up_at"),
        "updated_at" = excluded."updated_at"
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
), trial as (
    insert into "public"."trials" ("user_id", "plan", "state", "ends_at", "touched")
    select w.user_key, 'trial', 'trialing', a.trial_ends, now()
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and not exists (select 1 from "public"."trials" x where x."user_id" = w.user_key)
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
update "public"."trials" set "state" = 'expired', "touched" = now()
where "id" in (
    select "id" from "public"."trials"
    where "state" = 'trialing' and "plan" = 'trial' and "ends_at" <= now()
    order by "ends_at"
    limit $1
    for update skip locked
);

-- trials: lookup
select s."state"::text, s."ends_at", to_jsonb(s)
from "public"."trials" s join "public"."app_users" u on u."id" = s."user_id"
where u."clerk_user_id" = $1 and s."plan" = 'trial';

-- trials: due (the mapping's proof)
update "public"."trials" s set "ends_at" = (now() - interval '1 minute')
from "public"."app_users" u
where u."id" = s."user_id" and u."clerk_user_id" = $1 and s."plan" = 'trial';

-- organizations: upsert
with tombstone as (
    select 1 from clerksync.organization_tombstones where clerk_id = @clerk_id
), src as (
    select @clerk_id::text as clerk_id, @name::text as name, @slug::text as slug, @image_url::text as image_url, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @content_hash::text collate "C" as content_hash, @public_metadata::jsonb as public_metadata, @private_metadata::jsonb as private_metadata
    where not exists (select 1 from tombstone)
), apply as materialized (
    select src.* from src
    where not exists (select 1 from "public"."teams" u where u."clerk_org_id" = src.clerk_id)
       or not exists (
           select 1 from clerksync.organization_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:70408e882d4252b7' or st.clerk_updated_at > src.updated_at))
), state as (
    insert into clerksync.organization_state (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:70408e882d4252b7' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "public"."teams" u set
        "created_ms" = coalesce((extract(epoch from src."created_at") * 1000)::bigint, u."created_ms"),
        "logo_url" = src."image_url",
        "plan" = (src."public_metadata" #>> '{"plan"}'),
        "slug" = src."slug",
        "synced_at" = now(),
        "title" = coalesce(src."name", '')
    from apply src
    where u."clerk_org_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "public"."teams" as u ("clerk_org_id", "created_ms", "logo_url", "plan", "slug", "synced_at", "title")
    select src.clerk_id, (extract(epoch from src."created_at") * 1000)::bigint, src."image_url", (src."public_metadata" #>> '{"plan"}'), src."slug", now(), coalesce(src."name", '') from apply src
    where (select true from "public"."teams" x where x."clerk_org_id" = src.clerk_id) is null
    on conflict ("clerk_org_id") do update set
        "created_ms" = coalesce(excluded."created_ms", u."created_ms"),
        "logo_url" = excluded."logo_url",
        "plan" = excluded."plan",
        "slug" = excluded."slug",
        "synced_at" = excluded."synced_at",
        "title" = excluded."title"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written), exists (select 1 from tombstone),
       exists (select 1 from tombstone) and exists (select 1 from "public"."teams" u where u."clerk_org_id" = @clerk_id and true);

-- organizations: lookup
select u."id"::text, to_jsonb(u) || jsonb_build_object('clerk_id', u."clerk_org_id")
from "public"."teams" u where u."clerk_org_id" = $1 and true;

-- organizations: remove
delete from "public"."teams" u
where u."clerk_org_id" = $1 and exists (select 1 from clerksync.organization_tombstones where clerk_id = $1);

-- organizations: row left
exists (select 1 from "public"."teams" u where u."clerk_org_id" = $1 and true);

-- organizations: unseen
select u."clerk_org_id"::text from "public"."teams" u
where true
  and not exists (select 1 from clerksync.organization_state st where st.clerk_id = u."clerk_org_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_org_id")
  and not exists (select 1 from clerksync.organization_tombstones t where t.clerk_id = u."clerk_org_id")
order by 1;

-- memberships: upsert
with src as (
    select @clerk_id::text as clerk_id, @organization_id::text as organization_id, @user_id::text as user_id, @role::text collate "C" as role, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @permissions::jsonb as permissions, @public_metadata::jsonb as public_metadata
), apply as materialized (
    select src.*, o."id" as org_key, mu."id" as user_key
    from src
    join "public"."teams" o on o."clerk_org_id" = src.organization_id
    join "public"."app_users" mu on mu."clerk_user_id" = src.user_id
    where not exists (
    select 1 from clerksync.membership_state st join "public"."team_members" u on u."clerk_membership_id" = st.clerk_id
    where st.organization_id = src.organization_id and st.user_id = src.user_id and st.clerk_id <> src.clerk_id
      and (st.clerk_updated_at, st.clerk_id collate "C") > (src.updated_at, src.clerk_id collate "C"))
      and (not exists (select 1 from "public"."team_members" u where u."clerk_membership_id" = src.clerk_id)
           or not exists (
               select 1 from clerksync.membership_state st
               where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.role) >= (src.updated_at, src.role)
             and (st.projection = 'p1:e393f3a5bb9fd499' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.membership_state (clerk_id, organization_id, user_id, clerk_updated_at, role, projection)
    select clerk_id, organization_id, user_id, updated_at, role, 'p1:e393f3a5bb9fd499' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        role             = excluded.role,
        projection       = excluded.projection
),
updated as (
    update "public"."team_members" u set
        "permissions" = coalesce(src."permissions", '[]'),
        "role" = src."role"
    from apply src
    where u."clerk_membership_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "public"."team_members" as u ("clerk_membership_id", "team_id", "user_id", "joined_at", "permissions", "role")
    select src.clerk_id, src.org_key, src.user_key, src."created_at", coalesce(src."permissions", '[]'), src."role" from apply src
    where (select true from "public"."team_members" x where x."clerk_membership_id" = src.clerk_id) is null
    on conflict ("clerk_membership_id") do update set
        "permissions" = excluded."permissions",
        "role" = excluded."role",
        "clerk_membership_id" = excluded."clerk_membership_id"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written);

-- memberships: drop older
delete from "public"."team_members" u using clerksync.membership_state st
where st.clerk_id = u."clerk_membership_id" and st.organization_id = $2 and st.user_id = $3 and st.clerk_id <> $1
  and (st.clerk_updated_at, st.clerk_id collate "C") < ($4::timestamptz, $1::text collate "C");

-- memberships: remove
delete from "public"."team_members" u
where u."clerk_membership_id" = $1 and exists (select 1 from clerksync.organization_membership_tombstones where clerk_id = $1);

-- memberships: row left
exists (select 1 from "public"."team_members" u where u."clerk_membership_id" = $1);

-- memberships: members
select st.clerk_id, st.user_id, st.role::text, st.clerk_updated_at
from clerksync.membership_state st join "public"."team_members" u on u."clerk_membership_id" = st.clerk_id
where st.organization_id = $1 order by st.user_id;

-- memberships: unseen
select st.clerk_id, st.organization_id, st.user_id
from clerksync.membership_state st join "public"."team_members" u on u."clerk_membership_id" = st.clerk_id
where st.first_written_at < $2
  and exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.organization_id)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.clerk_id)
order by st.organization_id, st.clerk_id;
