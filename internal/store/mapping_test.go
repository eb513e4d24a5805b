package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func str(s string) *string { return &s }

// openExample opens a store on a new database holding example's tables in
// time zone tz, and a connection to read them with.
func openExample(t *testing.T, example testenv.Example, tz string) (*store.Store, *pgx.Conn) {
	st, dbURL := example.Store(t, tz)
	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	return st, db
}

// productUser is what a test reads of the Prisma example's "User" row.
type productUser struct {
	ID        string  `json:"id"`
	ClerkID   string  `json:"clerkId"`
	Email     string  `json:"email"`
	FirstName *string `json:"firstName"`
	Clerk     string  `json:"clerk_id"`
}

// TestMapping_PrismaAdoptsExistingRowsAndWritesTheApp'sTables: on the
// Prisma example in a database whose time zone is not UTC, a row the app
// had is updated in place (its key and its conversation kept), a new user
// gets a generated key and a trial in "Subscription" in UTC, a minimal row
// never overwrites the app's data, ensure's lookup answers the app's
// columns, a page from Clerk writes the same table, expiry works there, and
// a deletion removes the row and, by the app's cascade, its conversation.
func TestMapping_PrismaAdoptsExistingRowsAndWritesTheAppsTables(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.Prisma, "America/New_York")
	ctx := context.Background()
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, db.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	_, err := db.Exec(ctx, `
insert into "User" (id, "clerkId", email, "firstName", "updatedAt") values ('app-key-1', 'user_existing', 'old@example.com', 'Old', now());
insert into "Conversation" (id, "userId", title) values ('conv-1', 'app-key-1', 'kept');`)
	require.NoError(t, err)

	minimal, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_existing", ClerkUpdatedAt: clerkevent.MinimalVersion}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.Stale, minimal.Outcome, "a minimal row never overwrites the app's row")

	created := time.Now().UTC().Truncate(time.Millisecond)
	res, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_existing", Email: str("new@example.com"), FirstName: str("New"),
		ClerkCreatedAt: created.Add(-30 * 24 * time.Hour), ClerkUpdatedAt: created}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: "app-key-1", Outcome: store.Updated}, res, "updated in place, the app's key kept; an old user gets no trial")
	require.Equal(t, 1, count(`select count(*) from "Conversation" where "userId" = 'app-key-1'`))

	res, err = st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_new", ClerkCreatedAt: created, ClerkUpdatedAt: created}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	require.Len(t, res.UserID, 36, "a generated uuid")
	require.True(t, created.Add(time.Hour).Equal(res.TrialEndsAt), "trial ends at created_at + the period: %s", res.TrialEndsAt)
	require.Equal(t, "", func() string {
		var email string
		require.NoError(t, db.QueryRow(ctx, `select email from "User" where "clerkId" = 'user_new'`).Scan(&email))
		return email
	}(), "no primary email is written as ''")
	var endsUTC string
	require.NoError(t, db.QueryRow(ctx, `select to_char("trialEndsAt", 'YYYY-MM-DD HH24:MI:SS.MS') from "Subscription" s
join "User" u on u.id = s."userId" where u."clerkId" = 'user_new' and s.plan = 'trial' and s.status = 'trialing'`).Scan(&endsUTC))
	require.Equal(t, created.Add(time.Hour).Format("2006-01-02 15:04:05.000"), endsUTC, "timestamp(3) holds UTC though the database is in New York")
	require.Equal(t, 1, count(`select count(*) from "User" where "clerkId" = 'user_new'
  and abs(extract(epoch from "createdAt" - (now() at time zone 'UTC'))) < 60`), "createdAt is the write's time, in UTC")

	got, err := st.UserByClerkID(ctx, "user_existing")
	require.NoError(t, err)
	var row productUser
	require.NoError(t, got.Decode(&row))
	require.Equal(t, productUser{ID: "app-key-1", ClerkID: "user_existing", Email: "new@example.com", FirstName: str("New"), Clerk: "user_existing"}, row)
	require.False(t, got.Minimal())

	page, err := st.WriteUserPage(ctx, "", []clerkevent.User{
		{ClerkID: "user_paged", Email: str("paged@example.com"), ClerkCreatedAt: created, ClerkUpdatedAt: created},
		{ClerkID: "user_existing", Email: str("new@example.com"), FirstName: str("New"), ClerkCreatedAt: created.Add(-30 * 24 * time.Hour), ClerkUpdatedAt: created},
	}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.PageResult{Inserted: 1, Unchanged: 1, Trials: 1}, page)
	n, err := st.CountUsers(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	_, err = db.Exec(ctx, `update "Subscription" set "trialEndsAt" = (now() at time zone 'UTC') - interval '1 second'
where "userId" = (select id from "User" where "clerkId" = 'user_paged')`)
	require.NoError(t, err)
	expired, err := st.ExpireDueTrials(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, expired, "the trial that ended, and not the one ending in an hour")
	trial, err := st.TrialByClerkID(ctx, "user_paged")
	require.NoError(t, err)
	require.Equal(t, "expired", trial.Status)

	require.NoError(t, st.TombstoneUser(ctx, "user_existing", time.Now()))
	removed, err := st.RemoveUserRow(ctx, "user_existing")
	require.NoError(t, err)
	require.True(t, removed)
	require.Zero(t, count(`select count(*) from "User" where "clerkId" = 'user_existing'`))
	require.Zero(t, count(`select count(*) from "Conversation"`), "the app's cascade removed the conversation")
	_, err = st.UserByClerkID(ctx, "user_existing")
	require.ErrorIs(t, err, store.ErrDeleted)
	res, err = st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_existing", ClerkUpdatedAt: created.Add(time.Minute)}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.Tombstoned, res.Outcome, "no resurrection")
}

// TestMapping_PageWritesWhatOneWriteWrites: on the snake_case example,
// which maps every kind of source (text, times into timestamp and bigint,
// booleans, metadata whole and by path, the addresses, the whole object),
// a user written in a backfill's page holds exactly what the same user
// written alone holds, trial included.
func TestMapping_PageWritesWhatOneWriteWrites(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "Asia/Tokyo")
	ctx := context.Background()
	created := time.Now().UTC().Truncate(time.Millisecond)
	verified := false
	user := func(id string) clerkevent.User {
		return clerkevent.User{ClerkID: id, Email: str("p@example.com"), FirstName: str("Pat"), LastName: str("Lee"), Username: str("pat"),
			ImageURL: str("https://img.example/p.png"), ClerkCreatedAt: created, ClerkUpdatedAt: created.Add(time.Second),
			EmailVerified: &verified, EmailAddresses: []string{"p@example.com", "q@example.com"}, Phone: str("+15550000000"),
			ExternalID: str("crm-9"), PublicMetadata: []byte(`{"role":"owner"}`), UnsafeMetadata: []byte(`{"theme":"dark"}`),
			LastSignInAt: created.Add(time.Minute), Locked: true, Object: []byte(`{"object":"user"}`)}
	}
	_, err := st.UpsertUser(ctx, user("user_alone"), time.Hour)
	require.NoError(t, err)
	page, err := st.WriteUserPage(ctx, "", []clerkevent.User{user("user_paged")}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.PageResult{Inserted: 1, Trials: 1}, page)

	row := func(id string) map[string]any {
		var r map[string]any
		require.NoError(t, db.QueryRow(ctx, `
select to_jsonb(u) - 'id' - 'clerk_user_id' - 'updated_at'
       || jsonb_build_object('trial', (select jsonb_build_object('state', state, 'ends', ends_at) from trials where user_id = u.id))
from app_users u where clerk_user_id = $1`, id).Scan(&r))
		return r
	}
	alone, paged := row("user_alone"), row("user_paged")
	require.Equal(t, "owner", alone["role"], "the row read is the whole row")
	require.NotNil(t, alone["trial"])
	require.Equal(t, alone, paged)
}

// TestMapping_SnakeCaseSoftDeletesAndConvertsTimes: on the snake_case
// example, integer identity keys come from the database, Clerk's times go
// into timestamp (UTC) and bigint (milliseconds) columns, and a soft
// deletion keeps the row and the note that references it, with the
// personal columns cleared and the tombstone refusing later writes.
func TestMapping_SnakeCaseSoftDeletesAndConvertsTimes(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "Asia/Tokyo")
	ctx := context.Background()
	created := time.Now().UTC().Truncate(time.Millisecond)
	verified := true
	res, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_snake", Email: str("s@example.com"), FirstName: str("Sam"),
		ClerkCreatedAt: created, ClerkUpdatedAt: created.Add(time.Second),
		EmailVerified: &verified, EmailAddresses: []string{"s@example.com", "old@example.com"}, Phone: str("+15551234567"),
		ExternalID: str("crm-7"), PublicMetadata: []byte(`{"role":"admin","plan":{"seats":3}}`),
		PrivateMetadata: []byte(`{"secret":"not mapped"}`), LastSignInAt: created, Banned: true,
		Object: []byte(`{"id":"user_snake","object":"user"}`)}, time.Hour)
	require.NoError(t, err)
	require.Regexp(t, `^[0-9]+$`, res.UserID, "the identity's key, as text")
	var (
		role, phone, externalRef, settings, emails string
		emailVerified, banned                      bool
		lastSeen                                   time.Time
	)
	require.NoError(t, db.QueryRow(ctx, `select role, phone, external_ref, settings::text, all_emails::text, email_verified, banned, last_seen_at
from app_users`).Scan(&role, &phone, &externalRef, &settings, &emails, &emailVerified, &banned, &lastSeen))
	require.Equal(t, "admin", role, "public_metadata.role")
	require.Equal(t, "+15551234567", phone)
	require.Equal(t, "crm-7", externalRef)
	require.Equal(t, "{}", settings, "no unsafe_metadata is written as its missing value")
	require.Equal(t, `["s@example.com", "old@example.com"]`, emails)
	require.True(t, emailVerified)
	require.True(t, banned)
	require.True(t, created.Equal(lastSeen))
	var profileID string
	require.NoError(t, db.QueryRow(ctx, `select profile->>'id' from app_users`).Scan(&profileID))
	require.Equal(t, "user_snake", profileID, "the whole object")
	require.Equal(t, clerkevent.User{ClerkID: "u", PublicMetadata: []byte(`{"role":"admin"}`)},
		st.Mapping().Trim(clerkevent.User{ClerkID: "u", PublicMetadata: []byte(`{"role":"admin"}`), PrivateMetadata: []byte(`{"secret":1}`)}),
		"what the mapping does not write is trimmed before it reaches Temporal")
	var signedUp string
	var ms int64
	require.NoError(t, db.QueryRow(ctx, `select to_char(signed_up_at, 'YYYY-MM-DD HH24:MI:SS.MS'), clerk_updated_ms from app_users`).Scan(&signedUp, &ms))
	require.Equal(t, created.Format("2006-01-02 15:04:05.000"), signedUp)
	require.Equal(t, created.Add(time.Second).UnixMilli(), ms)
	trial, err := st.TrialByClerkID(ctx, "user_snake")
	require.NoError(t, err)
	require.Equal(t, "trialing", trial.Status)

	_, err = db.Exec(ctx, `insert into notes (user_id, body) values ($1::bigint, 'kept')`, res.UserID)
	require.NoError(t, err)
	require.NoError(t, st.TombstoneUser(ctx, "user_snake", time.Now()))
	removed, err := st.RemoveUserRow(ctx, "user_snake")
	require.NoError(t, err)
	require.True(t, removed)
	var email, first *string
	var deleted bool
	var phoneCleared bool
	require.NoError(t, db.QueryRow(ctx, `select email_address, given_name, deleted_at is not null, settings::text, phone is null
from app_users where id = $1::bigint`, res.UserID).Scan(&email, &first, &deleted, &settings, &phoneCleared))
	require.True(t, deleted)
	require.Nil(t, email)
	require.Nil(t, first)
	require.True(t, phoneCleared)
	require.Equal(t, "{}", settings, "a NOT NULL column is cleared to its missing value")
	_, err = st.UserByClerkID(ctx, "user_snake")
	require.ErrorIs(t, err, store.ErrDeleted)
	require.NotErrorIs(t, err, store.ErrRowLeft, "a soft-deleted row is not a removal left to finish")
	n, err := st.CountUsers(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a soft-deleted row is not a live user")
	removed, err = st.RemoveUserRow(ctx, "user_snake")
	require.NoError(t, err)
	require.False(t, removed, "deleting again changes nothing")
}

// TestMapping_BadMappingsAreRefusedWithTheirOwnMessage: each mistake in a
// mapping is refused when the store checks it against the database, as a
// MappingError no retry can fix, naming the table, the column and the fix.
func TestMapping_BadMappingsAreRefusedWithTheirOwnMessage(t *testing.T) {
	t.Parallel()
	prisma, err := readExample(testenv.Prisma)
	require.NoError(t, err)
	snake, err := readExample(testenv.SnakeCase)
	require.NoError(t, err)
	for _, c := range []struct {
		name, schema, from, to, want string
		// snake: the mistake is made in the snake_case example (its
		// organizations), not the Prisma one.
		snake bool
	}{
		{name: "missing table", from: "table: public.User", to: "table: public.Users",
			want: `users table public.Users: no such table`},
		{name: "missing column", from: "firstName: first_name", to: "givenName: first_name",
			want: `users table public.User, column givenName: no such column`},
		{name: "type that cannot hold the source", schema: `alter table "User" add column "age" integer`,
			from: "lastName: last_name", to: "lastName: last_name\n    age: username",
			want: `users table public.User, column age: type integer cannot hold source username (text)`},
		{name: "boolean into text", from: "username: username", to: "username: banned",
			want: `users table public.User, column username: type text cannot hold source banned (a boolean)`},
		{name: "uncovered NOT NULL column", from: "    updatedAt: now             # Prisma's @updatedAt, on every write\n", to: "",
			want: `users table public.User, column updatedAt: NOT NULL without a default, and the mapping does not write it`},
		{name: "NOT NULL column whose source can be missing", from: `email: {source: email, missing: ""}`, to: "email: email",
			want: `users table public.User, column email: NOT NULL, and source email can be missing`},
		{name: "NOT NULL time whose source can be missing", schema: `alter table "User" add column "joinedAt" timestamptz not null`,
			from: "lastName: last_name", to: "lastName: last_name\n    joinedAt: created_at",
			want: `users table public.User, column joinedAt: NOT NULL, and source created_at can be missing; say what is written then: {source: created_at, missing: now}`},
		{name: "Clerk ID column that is not unique", schema: `drop index "User_clerkId_key"`,
			want: `users table public.User, column clerkId: the Clerk ID column is not unique`},
		{name: "key without a default", from: "key: {column: id, generate: uuid}\n  columns:\n    # NOT NULL", to: "key: {column: id}\n  columns:\n    # NOT NULL",
			want: `users table public.User, column id: the primary key has no database default`},
		{name: "trial column missing", from: "ends_at: trialEndsAt", to: "ends_at: endsAt",
			want: `trials table public.Subscription, column endsAt: no such column`},
		{name: "organization table missing", snake: true, from: "table: public.teams", to: "table: public.groups",
			want: `organizations table public.groups: no such table`},
		{name: "organization column missing", snake: true, from: "logo_url: image_url", to: "logo: image_url",
			want: `organizations table public.teams, column logo: no such column`},
		{name: "organization Clerk ID column that is not unique", snake: true,
			schema: `alter table teams drop constraint teams_clerk_org_id_key`,
			want:   `organizations table public.teams, column clerk_org_id: the Clerk ID column is not unique`},
		{name: "membership reference of another type than the key", snake: true,
			schema: `alter table team_members drop constraint team_members_team_id_fkey; alter table team_members alter column team_id type text`,
			want:   `memberships table public.team_members, column team_id: type text does not match the organizations table's key (bigint)`},
		{name: "membership soft-deleted", snake: true, from: "    joined_at: {source: created_at, on: insert}\n  delete: delete",
			to:   "    joined_at: {source: created_at, on: insert}\n  delete: {soft: {deleted_at: joined_at}}",
			want: `memberships table public.team_members, column clerk_membership_id: memberships are deleted, not soft-deleted`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc, example := prisma, testenv.Prisma
			if c.snake {
				doc, example = snake, testenv.SnakeCase
			}
			if c.from != "" {
				require.Contains(t, doc, c.from)
				doc = strings.Replace(doc, c.from, c.to, 1)
			}
			m, err := mapping.Parse([]byte(doc))
			require.NoError(t, err)
			dbURL := example.ProductDatabase(t, "UTC")
			ctx := context.Background()
			if c.schema != "" {
				db, err := pgx.Connect(ctx, dbURL)
				require.NoError(t, err)
				_, err = db.Exec(ctx, c.schema)
				db.Close(ctx)
				require.NoError(t, err)
			}
			st, err := store.Open(ctx, dbURL, store.Layout{Mapping: m})
			require.NoError(t, err)
			defer st.Close()
			err = migrations.Apply(ctx, st)
			var bad *store.MappingError
			require.ErrorAs(t, err, &bad)
			require.Contains(t, err.Error(), c.want)
			require.True(t, migrations.IsPermanent(err))
		})
	}
}

func readExample(e testenv.Example) (string, error) {
	b, err := os.ReadFile(e.MappingFile())
	return string(b), err
}

// TestMapping_SoftDeletionClearsARowTheAppDeactivated: a row the app had
// soft-deleted itself (deleted_at set, its personal columns still there)
// loses them when Clerk deletes the user, and keeps the app's deletion
// time; deleting again changes nothing. It used to keep them for good.
func TestMapping_SoftDeletionClearsARowTheAppDeactivated(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "UTC")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_deactivated", Email: str("kept@example.com"), FirstName: str("Kept"),
		Phone: str("+15550000000"), ClerkCreatedAt: now, ClerkUpdatedAt: now}, 0)
	require.NoError(t, err)
	appDeleted := now.Add(-24 * time.Hour)
	_, err = db.Exec(ctx, `update app_users set deleted_at = $1`, appDeleted)
	require.NoError(t, err)

	require.NoError(t, st.TombstoneUser(ctx, "user_deactivated", now))
	removed, err := st.RemoveUserRow(ctx, "user_deactivated")
	require.NoError(t, err)
	require.True(t, removed, "the personal columns were cleared")
	var email, first, phone *string
	var deletedAt time.Time
	require.NoError(t, db.QueryRow(ctx, `select email_address, given_name, phone, deleted_at from app_users`).Scan(&email, &first, &phone, &deletedAt))
	require.Nil(t, email)
	require.Nil(t, first)
	require.Nil(t, phone)
	require.True(t, appDeleted.Equal(deletedAt), "the app's own deletion time is kept: %s", deletedAt)
	removed, err = st.RemoveUserRow(ctx, "user_deactivated")
	require.NoError(t, err)
	require.False(t, removed, "deleting again changes nothing")
}

// TestMapping_APathKeyIsTheKeyItSays: a metadata path key with a comma or
// a double quote reads that one key (it used to read another: a,b as the
// key b inside a, and a quote broke the path), on the single write and in
// what travels through Temporal alike.
func TestMapping_APathKeyIsTheKeyItSays(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.SnakeCase)
	require.NoError(t, err)
	doc = strings.Replace(doc, "    role: public_metadata.role\n", "    role: public_metadata.a,b\n", 1)
	doc = strings.Replace(doc, "    external_ref: external_id\n", "    external_ref: public_metadata.say\"hi\n", 1)
	st, db := openMapped(t, testenv.SnakeCase, doc, `select 1`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := st.Mapping().Trim(clerkevent.User{ClerkID: "user_keys", ClerkCreatedAt: now, ClerkUpdatedAt: now,
		PublicMetadata: []byte(`{"a,b":"comma","a":{"b":"nested"},"say\"hi":"quoted"}`)})
	_, err = st.UpsertUser(ctx, u, 0)
	require.NoError(t, err)
	var role, ref *string
	require.NoError(t, db.QueryRow(ctx, `select role, external_ref from app_users`).Scan(&role, &ref))
	require.Equal(t, "comma", *role)
	require.Equal(t, "quoted", *ref)
}

// TestMapping_KeepLeavesTheAppsValueWhenClerkHasNone: with keep: true, a
// role the app set before Clerk knew roles stays when Clerk's user has no
// role (a webhook, a backfill page, a minimal row alike), Clerk's role wins
// when it has one, and a new row gets the missing value. Without keep the
// backfill demoted the owner to member.
func TestMapping_KeepLeavesTheAppsValueWhenClerkHasNone(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	require.Contains(t, doc, "role: {source: public_metadata.role, missing: member, keep: true}", "the example keeps the app's roles")
	st, db := openMapped(t, testenv.Invoicing, doc, `select 1`)
	ctx := context.Background()
	_, err = db.Exec(ctx, `insert into app.users (clerk_user_id, email, role) values
('user_owner', 'owner@example.com', 'owner'), ('user_promoted', 'promoted@example.com', 'member'), ('user_paged', 'paged@example.com', 'admin')`)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id, email, metadata string) clerkevent.User {
		return clerkevent.User{ClerkID: id, Email: &email, ClerkCreatedAt: now, ClerkUpdatedAt: now, PublicMetadata: []byte(metadata)}
	}
	for _, u := range []clerkevent.User{user("user_owner", "owner@example.com", `{}`), user("user_promoted", "promoted@example.com", `{"role":"admin"}`),
		user("user_fresh", "fresh@example.com", `{}`)} {
		_, err := st.UpsertUser(ctx, st.Mapping().Trim(u), 0)
		require.NoError(t, err)
	}
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{st.Mapping().Trim(user("user_paged", "paged@example.com", `{}`))}, 0)
	require.NoError(t, err)
	_, err = st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_owner", ClerkUpdatedAt: clerkevent.MinimalVersion}, 0)
	require.NoError(t, err)
	roles := map[string]string{}
	rows, err := db.Query(ctx, `select clerk_user_id, role from app.users`)
	require.NoError(t, err)
	for rows.Next() {
		var id, role string
		require.NoError(t, rows.Scan(&id, &role))
		roles[id] = role
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{"user_owner": "owner", "user_promoted": "admin", "user_fresh": "member", "user_paged": "admin"}, roles)
}

// TestMapping_SoftDeletionStampsTheRowsTime: a soft deletion sets the
// columns every write stamps with its time (the snake_case app's
// updated_at), so the app sees when its row last changed.
func TestMapping_SoftDeletionStampsTheRowsTime(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "UTC")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_stamped", Email: str("s@example.com"), ClerkCreatedAt: now, ClerkUpdatedAt: now}, 0)
	require.NoError(t, err)
	old := now.Add(-48 * time.Hour)
	_, err = db.Exec(ctx, `update app_users set updated_at = $1`, old)
	require.NoError(t, err)
	require.NoError(t, st.TombstoneUser(ctx, "user_stamped", now))
	_, err = st.RemoveUserRow(ctx, "user_stamped")
	require.NoError(t, err)
	var updated time.Time
	require.NoError(t, db.QueryRow(ctx, `select updated_at from app_users`).Scan(&updated))
	require.True(t, updated.After(old.Add(time.Hour)), "updated_at still %s after the deletion", updated)
}

// TestMapping_FullNameJoinsFirstAndLast: a display name mapped from
// full_name holds both names, as Clerk's own fullName joins them (either
// alone when the other is missing, NULL when both are), on the single
// write and a backfill page alike. There was no way to keep the surname.
func TestMapping_FullNameJoinsFirstAndLast(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	doc = strings.Replace(doc, "    full_name: first_name\n", "    full_name: full_name\n", 1)
	st, db := openMapped(t, testenv.Invoicing, doc, `select 1`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id string, first, last *string) clerkevent.User {
		return clerkevent.User{ClerkID: id, FirstName: first, LastName: last, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	}
	_, err = st.UpsertUser(ctx, user("user_both", str("Ada"), str("Lovelace")), 0)
	require.NoError(t, err)
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{user("user_first", str("Grace"), nil), user("user_last", nil, str("Hopper")),
		user("user_none", nil, nil), user("user_paged", str("Alan"), str("Turing"))}, 0)
	require.NoError(t, err)
	names := map[string]*string{}
	rows, err := db.Query(ctx, `select clerk_user_id, full_name from app.users`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var name *string
		require.NoError(t, rows.Scan(&id, &name))
		names[id] = name
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]*string{"user_both": str("Ada Lovelace"), "user_first": str("Grace"), "user_last": str("Hopper"),
		"user_none": nil, "user_paged": str("Alan Turing")}, names)
}

// TestMapping_EnumColumns: an app whose role and trial status are
// PostgreSQL enums (Drizzle's pgEnum, Prisma's enum) is adopted: text is
// written as the enum, a missing value or a trial status that is no label
// of it is refused naming the labels, and a value from Clerk the enum
// lacks fails that one user's write as refused data. They were refused
// outright.
func TestMapping_EnumColumns(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	const enums = `
create type app.role_kind as enum ('member', 'admin', 'owner');
create type app.sub_status as enum ('trialing', 'active', 'canceled', 'expired');
alter table app.users drop constraint users_role_check;
alter table app.users alter column role drop default;
alter table app.users alter column role type app.role_kind using role::app.role_kind;
alter table app.subscriptions drop constraint subscriptions_status_check;
alter table app.subscriptions alter column status type app.sub_status using status::app.sub_status`
	st, db := openMapped(t, testenv.Invoicing, doc, enums)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id, metadata string) clerkevent.User {
		return clerkevent.User{ClerkID: id, ClerkCreatedAt: now, ClerkUpdatedAt: now, PublicMetadata: []byte(metadata)}
	}
	_, err = st.UpsertUser(ctx, st.Mapping().Trim(user("user_enum_admin", `{"role":"admin"}`)), 14*24*time.Hour)
	require.NoError(t, err)
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{st.Mapping().Trim(user("user_enum_member", `{}`))}, 14*24*time.Hour)
	require.NoError(t, err)
	var roles, statuses string
	require.NoError(t, db.QueryRow(ctx, `select string_agg(role::text, ',' order by clerk_user_id) from app.users`).Scan(&roles))
	require.Equal(t, "admin,member", roles)
	require.NoError(t, db.QueryRow(ctx, `select string_agg(status::text, ',') from app.subscriptions`).Scan(&statuses))
	require.Equal(t, "trialing,trialing", statuses)
	_, err = st.UpsertUser(ctx, st.Mapping().Trim(user("user_enum_super", `{"role":"superuser"}`)), 0)
	require.Error(t, err)
	require.Equal(t, store.Refused, st.Classify(err), "a label the enum lacks is that user's data refused: %v", err)

	for _, c := range []struct{ from, to, want string }{
		{"missing: member", "missing: guest", `missing "guest" is not a label of enum role_kind (member, admin, owner)`},
		{"expired: expired", "expired: lapsed", `"lapsed" is not a label of enum sub_status (trialing, active, canceled, expired)`},
	} {
		bad := strings.Replace(doc, c.from, c.to, 1)
		m, err := mapping.Parse([]byte(bad))
		require.NoError(t, err)
		dbURL := testenv.Invoicing.ProductDatabase(t, "UTC")
		conn, err := pgx.Connect(ctx, dbURL)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, enums)
		conn.Close(ctx)
		require.NoError(t, err)
		st, err := store.Open(ctx, dbURL, store.Layout{Mapping: m})
		require.NoError(t, err)
		err = migrations.Apply(ctx, st)
		st.Close()
		var bad2 *store.MappingError
		require.ErrorAs(t, err, &bad2)
		require.ErrorContains(t, err, c.want)
	}
}

// TestMapping_LegacyRowsLinkedByExternalID: the invoicing app's rows from
// before Clerk (no Clerk ID) are linked to the Clerk user whose
// external_id names their key, as Clerk's migration path sets it, from a
// webhook or a backfill page: the row the app's invoices hang from takes
// the Clerk user, rather than a second row its unique email refuses. A row
// some user already holds is never taken from it.
func TestMapping_LegacyRowsLinkedByExternalID(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.Invoicing, "UTC")
	ctx := context.Background()
	var first, second, third int
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (email, full_name) values ('first@example.com', 'First Legacy') returning id`).Scan(&first))
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (email, full_name) values ('second@example.com', 'Second Legacy') returning id`).Scan(&second))
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (clerk_user_id, email) values ('user_holder', 'third@example.com') returning id`).Scan(&third))
	_, err := db.Exec(ctx, `insert into app.invoices (user_id, total) values ($1, 10), ($2, 20)`, first, second)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id, email string, external int) clerkevent.User {
		ext := fmt.Sprint(external)
		return clerkevent.User{ClerkID: id, Email: &email, FirstName: str("Linked"), ExternalID: &ext, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	}
	res, err := st.UpsertUser(ctx, st.Mapping().Trim(user("user_first", "first@example.com", first)), 0)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(first), res.UserID, "the legacy row took the user")
	require.Equal(t, store.Updated, res.Outcome)
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{user("user_second", "second@example.com", second),
		user("user_thief", "thief@example.com", third)}, 0)
	require.NoError(t, err)
	var linked []string
	rows, err := db.Query(ctx, `select id || ':' || coalesce(clerk_user_id, '') || ':' || email from app.users order by id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		linked = append(linked, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		fmt.Sprintf("%d:user_first:first@example.com", first),
		fmt.Sprintf("%d:user_second:second@example.com", second),
		fmt.Sprintf("%d:user_holder:third@example.com", third),
	}, linked[:3])
	require.Len(t, linked, 4, "user_thief gets a row of its own, not user_holder's")
}

// TestMapping_LegacyRowsLinkedByVerifiedEmail: with users.link: [..,
// email] (the invoicing example), an invite row from before Clerk is
// linked to the Clerk user whose verified primary email it holds, compared
// as the column compares (citext: whatever the case), from a webhook and
// from a backfill page; an unverified email links nothing, so that user
// meets the row's unique email and is refused, visibly.
func TestMapping_LegacyRowsLinkedByVerifiedEmail(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.Invoicing, "UTC")
	ctx := context.Background()
	var invite, paged, unverified int
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (email, role) values ('Invite@Example.com', 'admin') returning id`).Scan(&invite))
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (email) values ('paged@example.com') returning id`).Scan(&paged))
	require.NoError(t, db.QueryRow(ctx, `insert into app.users (email) values ('unverified@example.com') returning id`).Scan(&unverified))
	_, err := db.Exec(ctx, `insert into app.invoices (user_id, total) values ($1, 10)`, invite)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id, email string, verified bool) clerkevent.User {
		return clerkevent.User{ClerkID: id, Email: &email, EmailVerified: &verified, FirstName: str("Ada"), LastName: str("L"),
			ClerkCreatedAt: now, ClerkUpdatedAt: now, PublicMetadata: []byte(`{}`)}
	}
	res, err := st.UpsertUser(ctx, user("user_invite", "invite@example.com", true), 0)
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: fmt.Sprint(invite), Outcome: store.Updated}, res, "the invite row took the user")
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{user("user_paged", "paged@example.com", true)}, 0)
	require.NoError(t, err)
	_, err = st.UpsertUser(ctx, user("user_unverified", "unverified@example.com", false), 0)
	require.Equal(t, store.Conflict, st.Classify(err), "an unverified email links nothing: the row's unique email refuses the user (%v)", err)

	rows, err := db.Query(ctx, `select id, coalesce(clerk_user_id, ''), role, coalesce(full_name, '') from app.users order by id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var (
			id                   int
			clerkID, role, named string
		)
		require.NoError(t, rows.Scan(&id, &clerkID, &role, &named))
		got = append(got, fmt.Sprintf("%d %s %s %s", id, clerkID, role, named))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		fmt.Sprintf("%d user_invite admin Ada L", invite), // the app's role kept: Clerk has none
		fmt.Sprintf("%d user_paged member Ada L", paged),
		fmt.Sprintf("%d  member ", unverified),
	}, got)
}

// TestMapping_DeprovisionedAndLastActiveAt: Clerk's deprovisioned (a user
// directory sync deactivated arrives as user.updated) and last_active_at
// are sources of their own, written by a webhook and a backfill page alike.
func TestMapping_DeprovisionedAndLastActiveAt(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	doc = strings.Replace(doc, "    updated_at: now\n", "    updated_at: now\n    deactivated: deprovisioned\n    last_seen: last_active_at\n", 1)
	st, db := openMapped(t, testenv.Invoicing, doc,
		`alter table app.users add column deactivated boolean not null default false, add column last_seen timestamptz`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	seen := now.Add(-time.Hour)
	user := func(id string, deprovisioned bool) clerkevent.User {
		email := id + "@example.com"
		return clerkevent.User{ClerkID: id, Email: &email, ClerkCreatedAt: now, ClerkUpdatedAt: now, Deprovisioned: deprovisioned, LastActiveAt: seen}
	}
	_, err = st.UpsertUser(ctx, user("user_scim", true), 0)
	require.NoError(t, err)
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{user("user_paged", true), user("user_active", false)}, 0)
	require.NoError(t, err)
	rows, err := db.Query(ctx, `select clerk_user_id, deactivated, last_seen from app.users order by clerk_user_id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var (
			id          string
			deactivated bool
			lastSeen    time.Time
		)
		require.NoError(t, rows.Scan(&id, &deactivated, &lastSeen))
		require.True(t, seen.Equal(lastSeen), "%s: last_seen %s", id, lastSeen)
		got = append(got, fmt.Sprintf("%s %t", id, deactivated))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"user_active false", "user_paged true", "user_scim true"}, got)
}

// TestMapping_AMissingTimeIsTheWritesTime: a NOT NULL time column mapped
// from Clerk's created_at takes missing: now, as the check suggests (it
// suggested missing: "", which the mapping then refused): a minimal row
// (ensure before the profile) gets the time of the write, the profile
// then Clerk's created_at.
func TestMapping_AMissingTimeIsTheWritesTime(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	doc = strings.Replace(doc, "    updated_at: now\n", "    updated_at: now\n    signed_up_at: {source: created_at, missing: now}\n", 1)
	st, db := openMapped(t, testenv.Invoicing, doc, `alter table app.users add column signed_up_at timestamptz not null`)
	ctx := context.Background()
	before := time.Now()
	_, err = st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_minimal", ClerkUpdatedAt: clerkevent.MinimalVersion}, 0)
	require.NoError(t, err)
	var signedUp time.Time
	require.NoError(t, db.QueryRow(ctx, `select signed_up_at from app.users where clerk_user_id = 'user_minimal'`).Scan(&signedUp))
	require.WithinDuration(t, before, signedUp, time.Minute, "the time of the write")

	created := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	email := "minimal@example.com"
	_, err = st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_minimal", Email: &email, ClerkCreatedAt: created, ClerkUpdatedAt: time.Now()}, 0)
	require.NoError(t, err)
	require.NoError(t, db.QueryRow(ctx, `select signed_up_at from app.users where clerk_user_id = 'user_minimal'`).Scan(&signedUp))
	require.True(t, created.Equal(signedUp), "Clerk's created_at: %s", signedUp)

	for _, bad := range []struct{ missing, want string }{
		{`"1970-01-01"`, `signed_up_at: missing: "1970-01-01": a time's missing value is now`},
	} {
		_, err := mapping.Parse([]byte(strings.Replace(doc, "missing: now", "missing: "+bad.missing, 1)))
		require.ErrorContains(t, err, bad.want)
	}
}

// TestMapping_UpdatesDrawNoKeyFromTheSequence: the invoicing app's key is
// an identity; updating its users, by webhook and by backfill page, draws
// no value from its sequence (an insert that ended in ON CONFLICT's update
// drew one per write), so the next new user's key follows the last.
func TestMapping_UpdatesDrawNoKeyFromTheSequence(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.Invoicing, "UTC")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(id string, version int) clerkevent.User {
		email := id + "@example.com"
		return clerkevent.User{ClerkID: id, Email: &email, FirstName: str(fmt.Sprint("v", version)), ClerkCreatedAt: now,
			ClerkUpdatedAt: now.Add(time.Duration(version) * time.Second)}
	}
	first, err := st.UpsertUser(ctx, user("user_first", 0), 0)
	require.NoError(t, err)
	for v := 1; v <= 5; v++ {
		res, err := st.UpsertUser(ctx, user("user_first", 2*v), 0)
		require.NoError(t, err)
		require.Equal(t, store.Updated, res.Outcome)
		page, err := st.WriteUserPage(ctx, "", []clerkevent.User{user("user_first", 2*v+1)}, 0)
		require.NoError(t, err)
		require.Equal(t, 1, page.Updated)
	}
	second, err := st.UpsertUser(ctx, user("user_second", 0), 0)
	require.NoError(t, err)
	var a, b int
	_, err = fmt.Sscan(first.UserID, &a)
	require.NoError(t, err)
	_, err = fmt.Sscan(second.UserID, &b)
	require.NoError(t, err)
	require.Equal(t, a+1, b, "ten updates drew no key")

	// The same for the app's workspaces and their members.
	name := "Acme"
	org := func(id string, version int) clerkevent.Organization {
		return clerkevent.Organization{ClerkID: id, Name: &name, ClerkCreatedAt: now, ClerkUpdatedAt: now.Add(time.Duration(version) * time.Second)}
	}
	member := func(version int) clerkevent.Membership {
		return clerkevent.Membership{ClerkID: "orgmem_seq", UserID: "user_first", Role: "org:member", Organization: org("org_seq", 0),
			ClerkCreatedAt: now, ClerkUpdatedAt: now.Add(time.Duration(version) * time.Second)}
	}
	for v := range 6 {
		res, err := st.UpsertOrganization(ctx, org("org_seq", v))
		require.NoError(t, err)
		require.NotEqual(t, store.Stale, res.Outcome)
		_, err = st.UpsertMembership(ctx, member(v))
		require.NoError(t, err)
	}
	_, err = st.UpsertOrganization(ctx, org("org_seq_next", 0))
	require.NoError(t, err)
	ids := map[string]int{}
	rows, err := db.Query(ctx, `select clerk_org_id, id from app.workspaces`)
	require.NoError(t, err)
	for rows.Next() {
		var (
			id  string
			key int
		)
		require.NoError(t, rows.Scan(&id, &key))
		ids[id] = key
	}
	require.NoError(t, rows.Err())
	require.Equal(t, ids["org_seq"]+1, ids["org_seq_next"], "five updates of a workspace drew no key")
	next := member(0)
	next.ClerkID, next.UserID = "orgmem_seq_next", "user_second"
	_, err = st.UpsertMembership(ctx, next)
	require.NoError(t, err)
	var updatedKey, nextKey int
	require.NoError(t, db.QueryRow(ctx, `select
    (select id from app.workspace_members where clerk_membership_id = 'orgmem_seq'),
    (select id from app.workspace_members where clerk_membership_id = 'orgmem_seq_next')`).Scan(&updatedKey, &nextKey))
	require.Equal(t, updatedKey+1, nextKey, "five updates of a membership drew no key")
}

// TestMapping_LegacyLinkFindsTheRowByTheKeysIndex: the external_id link
// compares the external_id as the key's own type, so PostgreSQL finds the
// row by the primary key's index rather than scanning the app's table for
// every write of a user with an external_id (it compared the key as
// text); an external_id the key's type cannot hold (not a number, for an
// integer key) links nothing and fails nothing.
func TestMapping_LegacyLinkFindsTheRowByTheKeysIndex(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.Invoicing, "UTC")
	ctx := context.Background()
	_, err := db.Exec(ctx, `insert into app.users (email) select 'legacy' || g || '@example.com' from generate_series(1, 5000) g; analyze app.users`)
	require.NoError(t, err)
	statements, err := st.Statements(ctx)
	require.NoError(t, err)
	var link string
	for _, s := range statements {
		if s.Name == "link a row from before Clerk" {
			link = s.SQL
		}
	}
	require.NotEmpty(t, link)
	rows, err := db.Query(ctx, `explain `+link, []string{"user_x"}, []string{"4242"})
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	explained := strings.Join(lines, "\n")
	require.NotContains(t, explained, "Seq Scan on users", explained)
	require.Contains(t, explained, "users_pkey", explained)

	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, ext := range []string{"not-a-number", "99999999999999999999", "4242"} {
		email, ext := "ext"+ext+"@example.com", ext
		_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_ext_" + strings.ReplaceAll(ext, "-", "_"), Email: &email, ExternalID: &ext,
			ClerkCreatedAt: now, ClerkUpdatedAt: now}, 0)
		require.NoError(t, err, "external_id %q", ext)
	}
	var linked string
	require.NoError(t, db.QueryRow(ctx, `select coalesce(clerk_user_id, '') from app.users where id = 4242`).Scan(&linked))
	require.Equal(t, "user_ext_4242", linked)
}
