package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/testsupport/sentryfake"
)

// TestSentry_TheBinariesReportWhatNeedsAPersonAndNoPII: with SENTRY_DSN
// pointed at a local stand-in for Sentry's envelope endpoint, the worker
// reports an event that failed for good (a NUL byte PostgreSQL refuses) and
// a user whose writes keep failing past their budget (a trigger refuses
// them as a table being migrated), and the starter a burst of webhooks with
// bad signatures; each report names the Clerk ID, the event type or the
// activity, the Svix message and the workflow run, and none holds the
// users' emails or names.
func TestSentry_TheBinariesReportWhatNeedsAPersonAndNoPII(t *testing.T) {
	t.Parallel()
	sentry := sentryfake.Start(t)
	b := startBinaries(t, "sentry", "SENTRY_DSN="+sentry.DSN(), "SENTRY_ENVIRONMENT=test", "TEMPORAL_UI_URL=http://temporal.example.com")
	s := b.system
	ctx := context.Background()
	_, err := s.db.Exec(ctx, `
create function refuse_wedged() returns trigger language plpgsql as $$
begin
    if new.clerk_id = 'user_sentry_wedged' then
        raise exception 'users is being migrated' using errcode = '55P03';
    end if;
    return new;
end $$;
create trigger users_refuse_wedged before insert or update on users for each row execute function refuse_wedged();`)
	require.NoError(t, err)

	now := time.Now().Truncate(time.Millisecond)
	people := []clerkwebhook.UserFields{
		{ClerkID: "user_sentry_failed", Email: "ottoline@example.com", FirstName: "Ottoline\x00", LastName: "Morrellson"},
		{ClerkID: "user_sentry_wedged", Email: "wilhelmina@example.com", FirstName: "Wilhelmina", LastName: "Fairweatherly"},
	}
	for _, p := range people {
		p.CreatedAt, p.UpdatedAt = now, now
		body, err := clerkwebhook.UserEvent("user.created", p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_"+p.ClerkID, body))
	}
	forged, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_sentry_forged", CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	for i := range errreport.BurstThreshold + 2 {
		require.Equal(t, http.StatusUnauthorized, s.postSigned(t, otherSecret, time.Now(), fmt.Sprintf("msg_forged_%d", i), forged))
	}

	find := func(prefix string) *sentryfake.Event {
		for _, ev := range sentry.Events() {
			if strings.HasPrefix(ev.Message, prefix) {
				return &ev
			}
		}
		return nil
	}
	require.Eventually(t, func() bool {
		return find("Event could not be applied") != nil && find(errreport.WriteKeepsFailing) != nil && find("Webhook signatures failing") != nil
	}, 90*time.Second, 250*time.Millisecond, "reports so far: %+v", sentry.Events())

	failed := find("Event could not be applied")
	require.Equal(t, "user_sentry_failed", failed.Tags["clerk_id"])
	require.Equal(t, "msg_user_sentry_failed", failed.Tags["svix_id"])
	require.Equal(t, "user.created", failed.Tags["event_type"])
	require.Equal(t, "22021", failed.Tags["sqlstate"], "a NUL byte is invalid text")
	require.Equal(t, "worker", failed.Tags["process"])
	require.Contains(t, failed.Contexts["clerksync"]["workflow"], "http://temporal.example.com/namespaces/default/workflows/sentry%2Fuser%2Fuser_sentry_failed/")

	wedged := find(errreport.WriteKeepsFailing)
	require.Equal(t, "user_sentry_wedged", wedged.Tags["clerk_id"])
	require.Equal(t, "UpsertUser", wedged.Tags["activity_type"])

	burst := find("Webhook signatures failing")
	require.Equal(t, "starter", burst.Tags["process"])

	for _, ev := range sentry.Events() {
		for _, p := range people {
			for _, pii := range []string{p.Email, strings.TrimRight(p.FirstName, "\x00"), p.LastName} {
				require.NotContains(t, ev.Raw, pii, "a report holds personal data")
			}
		}
		require.NotContains(t, ev.Raw, testSecret)
	}
}
