package systemtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// codecToken is the CODEC_AUTH_TOKEN of the encryption test's starter.
const codecToken = "codec-token-for-tests"

// TestEncryption_HistoriesHoldNoPersonalDataAndKeysRotate runs the binaries
// with PAYLOAD_KEYS=a:..., sends signed webhooks and an ensure with known
// emails and names, and reads every workflow's history raw (no codec): none
// of them is there. Through the starter's codec server, as the Temporal CLI
// reads it with --codec-endpoint, all of them are. Then key b becomes the
// encrypting key (PAYLOAD_KEYS=b:...,a:...): the old workflows stay
// readable and queryable, and new payloads carry b's ID.
func TestEncryption_HistoriesHoldNoPersonalDataAndKeysRotate(t *testing.T) {
	t.Parallel()
	keyA, keyB := "a:"+newPayloadKey(t), "b:"+newPayloadKey(t)
	b := startBinaries(t, "encrypted", "PAYLOAD_KEYS="+keyA, "CODEC_AUTH_TOKEN="+codecToken)

	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	people := []clerkwebhook.UserFields{
		{ClerkID: "user_enc_a", Email: "hypatia@example.com", FirstName: "Hypatia", LastName: "Alexandrou", Username: "hypatia_alx"},
		{ClerkID: "user_enc_b", Email: "emmy.noether@example.com", FirstName: "Emmy", LastName: "Noetherine"},
	}
	for i, p := range people {
		p.CreatedAt, p.UpdatedAt = base, base.Add(time.Duration(i)*time.Second)
		body, err := clerkwebhook.UserEvent("user.created", p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, b.post(t, fmt.Sprintf("msg_enc_%d", i), body))
	}
	b.clerk.PutUser(clerkfake.User{ID: "user_enc_c", Email: "sofia.k@example.com", FirstName: "Sofia", LastName: "Kovalevskaya",
		CreatedAt: base, UpdatedAt: base})
	code, _ := b.ensureCall(t, b.token(t, "user_enc_c"))
	require.Equal(t, http.StatusOK, code)
	for _, id := range []string{"user_enc_a", "user_enc_b", "user_enc_c"} {
		b.waitForRow(t, id, func(email, _ *string) bool { return email != nil })
	}
	waitIdle(t, b.taskQueue)
	personal := []string{"hypatia@example.com", "Hypatia", "Alexandrou", "hypatia_alx", "emmy.noether@example.com",
		"Noetherine", "sofia.k@example.com", "Kovalevskaya"}

	ids := workflowIDs(t, b.taskQueue)
	require.Len(t, ids, 3)
	for _, id := range ids {
		raw := withPayloadData(t, rawHistory(t, id))
		for _, p := range personal {
			require.NotContains(t, raw, p, "workflow %s holds %q in Temporal's history", id, p)
		}
		require.Contains(t, raw, keyIDField("a"), "payloads name key a")
	}

	// Through the codec server, as an operator reads it.
	shown := ""
	for _, id := range ids {
		shown += withPayloadData(t, showWithCodec(t, b, id, "Bearer "+codecToken))
	}
	for _, p := range personal {
		require.Contains(t, shown, p, "the codec server did not decode %q", p)
	}
	require.NotContains(t, withPayloadData(t, showWithCodec(t, b, ids[0], "")), "Hypatia", "the codec server decodes without its token")

	// Rotation: b encrypts, a still decrypts.
	b.stop(t)
	b.start(t, "PAYLOAD_KEYS="+keyB+","+keyA)
	out, err := b.starterCommand("status", "user_enc_a")
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `"synced"`, "the old run's state query answers under the rotated keys")
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_enc_d", Email: "ada.b@example.com",
		FirstName: "Adeline", CreatedAt: base, UpdatedAt: base})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, b.post(t, "msg_enc_d", body))
	b.waitForRow(t, "user_enc_d", func(email, _ *string) bool { return email != nil })
	waitIdle(t, b.taskQueue)
	raw := withPayloadData(t, rawHistory(t, contract.User.WorkflowID(b.taskQueue, "user_enc_d")))
	require.NotContains(t, raw, "Adeline")
	require.Contains(t, raw, keyIDField("b"), "new payloads are under key b")
	require.NotContains(t, raw, keyIDField("a"))
	require.Contains(t, withPayloadData(t, showWithCodec(t, b, contract.User.WorkflowID(b.taskQueue, "user_enc_a"), "Bearer "+codecToken)), "Hypatia",
		"history under key a stays readable")
}

// dataField is a payload's base64 data in a history as JSON.
var dataField = regexp.MustCompile(`"data":\s*"([A-Za-z0-9+/=_-]*)"`)

// withPayloadData returns js followed by the decoded data of every payload
// in it, so a search of the result sees what a payload holds.
func withPayloadData(t *testing.T, js string) string {
	t.Helper()
	var all strings.Builder
	all.WriteString(js)
	for _, m := range dataField.FindAllStringSubmatch(js, -1) {
		b, err := base64.StdEncoding.DecodeString(m[1])
		require.NoError(t, err, "payload data %q", m[1])
		all.WriteByte('\n')
		all.Write(b)
	}
	return all.String()
}

// keyIDField is the metadata entry naming a payload's key, as protojson
// writes it.
func keyIDField(id string) string {
	return `"` + payloadcodec.MetadataKeyID + `":"` + base64.StdEncoding.EncodeToString([]byte(id)) + `"`
}

func newPayloadKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(k)
}

// waitIdle waits until no user workflow on taskQueue runs.
func waitIdle(t *testing.T, taskQueue string) {
	t.Helper()
	tc := testenv.Temporal(t)
	var running []string
	require.Eventually(t, func() bool {
		resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s' AND WorkflowType = 'UserWorkflow' AND ExecutionStatus = 'Running'", taskQueue),
		})
		if err != nil {
			return false
		}
		running = running[:0]
		for _, e := range resp.GetExecutions() {
			running = append(running, e.GetExecution().GetWorkflowId())
		}
		return len(running) == 0
	}, 2*time.Minute, 200*time.Millisecond, "still running: %v", &running)
}

// workflowIDs lists the user workflows on taskQueue.
func workflowIDs(t *testing.T, taskQueue string) []string {
	t.Helper()
	var ids []string
	require.Eventually(t, func() bool {
		resp, err := testenv.Temporal(t).ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s' AND WorkflowType = 'UserWorkflow'", taskQueue),
		})
		if err != nil {
			return false
		}
		ids = ids[:0]
		seen := map[string]bool{}
		for _, e := range resp.GetExecutions() {
			if id := e.GetExecution().GetWorkflowId(); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		return len(ids) > 0
	}, 30*time.Second, 200*time.Millisecond)
	return ids
}

// rawHistory is every run of the workflow's history as Temporal stores it,
// read without any codec, as JSON.
func rawHistory(t *testing.T, workflowID string) string {
	t.Helper()
	tc := testenv.Temporal(t)
	resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", workflowID),
	})
	require.NoError(t, err)
	var all strings.Builder
	for _, e := range resp.GetExecutions() {
		it := tc.GetWorkflowHistory(context.Background(), workflowID, e.GetExecution().GetRunId(), false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			b, err := protojson.Marshal(ev)
			require.NoError(t, err)
			all.Write(b)
			all.WriteByte('\n')
		}
		// Search attributes and memos live on the execution too.
		b, err := protojson.Marshal(e)
		require.NoError(t, err)
		all.Write(b)
	}
	return all.String()
}

// showWithCodec runs `temporal workflow show` on the workflow's newest run
// through the starter's codec server, with the given Authorization header
// (none when empty), and returns its output.
func showWithCodec(t *testing.T, b *binaries, workflowID, auth string) string {
	t.Helper()
	args := []string{"workflow", "show", "--workflow-id", workflowID, "--address", testenv.TemporalAddress(t),
		"--codec-endpoint", b.url + "/codec", "--output", "json"}
	if auth != "" {
		args = append(args, "--codec-auth", auth)
	}
	out, _ := exec.Command(testenv.TemporalCLI(t), args...).CombinedOutput()
	return string(out)
}
