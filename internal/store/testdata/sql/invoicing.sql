-- The statements clerksync builds for invoicing (TestStatements_MatchTheGoldenSQL; -update-sql rewrites this file).

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
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:4f8ad664b79508e3' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:4f8ad664b79508e3' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "app"."users" u set
        "email" = coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)),
        "full_name" = nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''),
        "role" = coalesce((src."public_metadata" #>> '{"role"}'), u."role"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "app"."users" as u ("clerk_user_id", "email", "full_name", "role", "updated_at")
    select src.clerk_id, coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)), nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''), coalesce((src."public_metadata" #>> '{"role"}'), 'member'), now() from apply src
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "email" = excluded."email",
        "full_name" = excluded."full_name",
        "role" = coalesce((select (src."public_metadata" #>> '{"role"}') from apply src where src.clerk_id = excluded."clerk_user_id"), u."role"),
        "updated_at" = excluded."updated_at"
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select
    coalesce((select id from written), (select "id"::text from "app"."users" where "clerk_user_id" = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone);

-- users: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, null::text as username, null::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, p.public_metadata::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[], @public_metadata::text[]) as p(clerk_id, email, first_name, last_name, created_at, updated_at, content_hash, public_metadata)
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
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:4f8ad664b79508e3' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:4f8ad664b79508e3' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "app"."users" u set
        "email" = coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)),
        "full_name" = nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''),
        "role" = coalesce((src."public_metadata" #>> '{"role"}'), u."role"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "app"."users" as u ("clerk_user_id", "email", "full_name", "role", "updated_at")
    select src.clerk_id, coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)), nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''), coalesce((src."public_metadata" #>> '{"role"}'), 'member'), now() from apply src
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "email" = excluded."email",
        "full_name" = excluded."full_name",
        "role" = coalesce((select (src."public_metadata" #>> '{"role"}') from apply src where src.clerk_id = excluded."clerk_user_id"), u."role"),
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
       jsonb_build_object('clerk_user_id', u."clerk_user_id", 'email', u."email", 'full_name', u."full_name", 'id', u."id", 'role', u."role", 'updated_at', u."updated_at") || jsonb_build_object('clerk_id', u."clerk_user_id"),
       coalesce((select st.clerk_updated_at <= 'epoch' from clerksync.user_state st where st.clerk_id = u."clerk_user_id"), false),
       exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id"),
       (u."deleted_at" is null or u."full_name" is distinct from null)
from "app"."users" u where u."clerk_user_id" = $1;

-- users: remove
update "app"."users" u set "deleted_at" = coalesce(u."deleted_at", now()), "full_name" = null, "updated_at" = now()
where u."clerk_user_id" = $1 and (u."deleted_at" is null or u."full_name" is distinct from null)
  and exists (select 1 from clerksync.user_tombstones where clerk_id = $1);

-- users: row left
select exists (select 1 from "app"."users" u where u."clerk_user_id" = $1 and (u."deleted_at" is null or u."full_name" is distinct from null));

-- users: count
select count(*) from "app"."users" u where u."deleted_at" is null and u."clerk_user_id" is not null;

-- users: unseen
select u."clerk_user_id"::text
from "app"."users" u
where u."deleted_at" is null and u."clerk_user_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_user_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_user_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id")
  and u."clerk_user_id" > $3
order by u."clerk_user_id"
limit $4;

-- users: unseen count
select count(*)
from "app"."users" u
where u."deleted_at" is null and u."clerk_user_id" is not null
  and not exists (select 1 from clerksync.user_state st where st.clerk_id = u."clerk_user_id" and st.first_written_at >= $2)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = u."clerk_user_id")
  and not exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u."clerk_user_id");

-- users: link a row from before Clerk
update "app"."users" u set "clerk_user_id" = p.clerk_id
from unnest($1::text[], $2::text[]) as p(clerk_id, external_id)
where u."clerk_user_id" is null and u."id" = p.external_id::integer
  and (select true from "app"."users" x where x."clerk_user_id" = p.clerk_id) is null
  and (select true from clerksync.user_tombstones x where x.clerk_id = p.clerk_id) is null;

-- users: link a row from before Clerk by verified email
update "app"."users" u set "clerk_user_id" = p.clerk_id
from unnest($1::text[], $2::text[]) as p(clerk_id, email)
where u."clerk_user_id" is null and u."email" = p.email::"public"."citext"
  and (select true from "app"."users" x where x."clerk_user_id" = p.clerk_id) is null
  and (select true from clerksync.user_tombstones x where x.clerk_id = p.clerk_id) is null;

-- trials: grant
with granted as (
    update clerksync.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $2::timestamptz > now()
    returning clerk_id
)
insert into "app"."subscriptions" ("user_id", "plan", "status", "ends_at", "updated_at")
select u."id", 'trial', 'trialing', $2::timestamptz, now() from granted g join "app"."users" u on u."clerk_user_id" = g.clerk_id
where not exists (select 1 from "app"."subscriptions" x where x."user_id" = u."id")
on conflict do nothing
returning "ends_at";

-- trials: page
with page as (
    select p.clerk_id::text as clerk_id, p.email::text as email, p.first_name::text as first_name, p.last_name::text as last_name, null::text as username, null::text as image_url, p.created_at::timestamptz as created_at, p.updated_at::timestamptz as updated_at, p.content_hash::text collate "C" as content_hash, null::boolean as email_verified, null::jsonb as email_addresses, null::text as phone, null::text as external_id, p.public_metadata::jsonb as public_metadata, null::jsonb as private_metadata, null::jsonb as unsafe_metadata, null::timestamptz as last_sign_in_at, null::boolean as banned, null::boolean as locked, null::jsonb as object, null::timestamptz as last_active_at, null::boolean as deprovisioned
    from unnest(@clerk_id::text[], @email::text[], @first_name::text[], @last_name::text[], @created_at::timestamptz[], @updated_at::timestamptz[], @content_hash::text[], @public_metadata::text[]) as p(clerk_id, email, first_name, last_name, created_at, updated_at, content_hash, public_metadata)
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
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
       or (src.updated_at > 'epoch' and not exists (
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:4f8ad664b79508e3' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection, trial_granted_at)
    select clerk_id, updated_at, content_hash, 'p1:4f8ad664b79508e3', case when grant_trial then now() end from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection,
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at)
),
updated as (
    update "app"."users" u set
        "email" = coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)),
        "full_name" = nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''),
        "role" = coalesce((src."public_metadata" #>> '{"role"}'), u."role"),
        "updated_at" = now()
    from apply src
    where u."clerk_user_id" = src.clerk_id
      and u."clerk_user_id" = any (array(select clerk_id from apply))
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, false as inserted
), inserted as (
    insert into "app"."users" as u ("clerk_user_id", "email", "full_name", "role", "updated_at")
    select src.clerk_id, coalesce(src."email", replace('{clerk_id}@no-email.invalid', '{clerk_id}', src.clerk_id)), nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), ''), coalesce((src."public_metadata" #>> '{"role"}'), 'member'), now() from apply src
    where (select true from "app"."users" x where x."clerk_user_id" = src.clerk_id) is null
    order by src.clerk_id
    on conflict ("clerk_user_id") do update set
        "email" = excluded."email",
        "full_name" = excluded."full_name",
        "role" = coalesce((select (src."public_metadata" #>> '{"role"}') from apply src where src.clerk_id = excluded."clerk_user_id"), u."role"),
        "updated_at" = excluded."updated_at"
    returning u."clerk_user_id" as clerk_id, u."id"::text as id, u."id" as user_key, xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
), trial as (
    insert into "app"."subscriptions" ("user_id", "plan", "status", "ends_at", "updated_at")
    select w.user_key, 'trial', 'trialing', a.trial_ends, now()
    from apply a join written w on w.clerk_id = a.clerk_id
    where a.grant_trial and not exists (select 1 from "app"."subscriptions" x where x."user_id" = w.user_key)
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
update "app"."subscriptions" set "status" = 'expired', "updated_at" = now()
where "id" in (
    select "id" from "app"."subscriptions"
    where "status" = 'trialing' and "plan" = 'trial' and "ends_at" <= now()
    order by "ends_at"
    limit $1
    for update skip locked
);

-- trials: lookup
select s."status"::text, s."ends_at", to_jsonb(s)
from "app"."subscriptions" s join "app"."users" u on u."id" = s."user_id"
where u."clerk_user_id" = $1 and s."plan" = 'trial';

-- trials: due (the mapping's proof)
update "app"."subscriptions" s set "ends_at" = (now() - interval '1 minute')
from "app"."users" u
where u."id" = s."user_id" and u."clerk_user_id" = $1 and s."plan" = 'trial';

-- organizations: upsert
with tombstone as (
    select 1 from clerksync.organization_tombstones where clerk_id = @clerk_id
), src as (
    select @clerk_id::text as clerk_id, @name::text as name, @slug::text as slug, @image_url::text as image_url, @created_at::timestamptz as created_at, @updated_at::timestamptz as updated_at, @content_hash::text collate "C" as content_hash, @public_metadata::jsonb as public_metadata, @private_metadata::jsonb as private_metadata
    where not exists (select 1 from tombstone)
), apply as materialized (
    select src.* from src
    where not exists (select 1 from "app"."workspaces" u where u."clerk_org_id" = src.clerk_id)
       or not exists (
           select 1 from clerksync.organization_state st
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)
             and (st.projection = 'p1:107f896a8e34bee9' or st.clerk_updated_at > src.updated_at))
), state as (
    insert into clerksync.organization_state (clerk_id, clerk_updated_at, content_hash, projection)
    select clerk_id, updated_at, content_hash, 'p1:107f896a8e34bee9' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection
),
updated as (
    update "app"."workspaces" u set
        "name" = coalesce(src."name", ''),
        "updated_at" = now()
    from apply src
    where u."clerk_org_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "app"."workspaces" as u ("clerk_org_id", "name", "updated_at")
    select src.clerk_id, coalesce(src."name", ''), now() from apply src
    where (select true from "app"."workspaces" x where x."clerk_org_id" = src.clerk_id) is null
    on conflict ("clerk_org_id") do update set
        "name" = excluded."name",
        "updated_at" = excluded."updated_at"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written), exists (select 1 from tombstone),
       exists (select 1 from tombstone) and exists (select 1 from "app"."workspaces" u where u."clerk_org_id" = @clerk_id and true);

-- organizations: lookup
select u."id"::text, to_jsonb(u) || jsonb_build_object('clerk_id', u."clerk_org_id")
from "app"."workspaces" u where u."clerk_org_id" = $1 and true;

-- organizations: remove
delete from "app"."workspaces" u
where u."clerk_org_id" = $1 and exists (select 1 from clerksync.organization_tombstones where clerk_id = $1);

-- organizations: row left
exists (select 1 from "app"."workspaces" u where u."clerk_org_id" = $1 and true);

-- organizations: unseen
select u."clerk_org_id"::text from "app"."workspaces" u
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
    join "app"."workspaces" o on o."clerk_org_id" = src.organization_id
    join "app"."users" mu on mu."clerk_user_id" = src.user_id
    where not exists (
    select 1 from clerksync.membership_state st join "app"."workspace_members" u on u."clerk_membership_id" = st.clerk_id
    where st.organization_id = src.organization_id and st.user_id = src.user_id and st.clerk_id <> src.clerk_id
      and (st.clerk_updated_at, st.clerk_id collate "C") > (src.updated_at, src.clerk_id collate "C"))
      and (not exists (select 1 from "app"."workspace_members" u where u."clerk_membership_id" = src.clerk_id)
           or not exists (
               select 1 from clerksync.membership_state st
               where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.role) >= (src.updated_at, src.role)
             and (st.projection = 'p1:57aeb2c7f2ee7f8a' or st.clerk_updated_at > src.updated_at)))
), state as (
    insert into clerksync.membership_state (clerk_id, organization_id, user_id, clerk_updated_at, role, projection)
    select clerk_id, organization_id, user_id, updated_at, role, 'p1:57aeb2c7f2ee7f8a' from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        role             = excluded.role,
        projection       = excluded.projection
),
updated as (
    update "app"."workspace_members" u set
        "joined_at" = coalesce(src."created_at", u."joined_at"),
        "role" = (src."role")::"app"."workspace_role"
    from apply src
    where u."clerk_membership_id" = src.clerk_id
    returning false as inserted
), inserted as (
    insert into "app"."workspace_members" as u ("clerk_membership_id", "workspace_id", "user_id", "joined_at", "role")
    select src.clerk_id, src.org_key, src.user_key, src."created_at", (src."role")::"app"."workspace_role" from apply src
    where (select true from "app"."workspace_members" x where x."clerk_membership_id" = src.clerk_id) is null
    on conflict ("clerk_membership_id") do update set
        "joined_at" = coalesce(excluded."joined_at", u."joined_at"),
        "role" = excluded."role",
        "clerk_membership_id" = excluded."clerk_membership_id"
    returning xmax = 0 as inserted
), written as (
    select * from updated union all select * from inserted
)
select (select inserted from written);

-- memberships: drop older
delete from "app"."workspace_members" u using clerksync.membership_state st
where st.clerk_id = u."clerk_membership_id" and st.organization_id = $2 and st.user_id = $3 and st.clerk_id <> $1
  and (st.clerk_updated_at, st.clerk_id collate "C") < ($4::timestamptz, $1::text collate "C");

-- memberships: remove
delete from "app"."workspace_members" u
where u."clerk_membership_id" = $1 and exists (select 1 from clerksync.organization_membership_tombstones where clerk_id = $1);

-- memberships: row left
exists (select 1 from "app"."workspace_members" u where u."clerk_membership_id" = $1);

-- memberships: members
select st.clerk_id, st.user_id, st.role::text, st.clerk_updated_at
from clerksync.membership_state st join "app"."workspace_members" u on u."clerk_membership_id" = st.clerk_id
where st.organization_id = $1 order by st.user_id;

-- memberships: unseen
select st.clerk_id, st.organization_id, st.user_id
from clerksync.membership_state st join "app"."workspace_members" u on u."clerk_membership_id" = st.clerk_id
where st.first_written_at < $2
  and exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.organization_id)
  and not exists (select 1 from clerksync.backfill_seen s where s.run = $1 and s.clerk_id = st.clerk_id)
order by st.organization_id, st.clerk_id;
