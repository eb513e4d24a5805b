// The example's patterns against a running starter: the Go test
// TestTypeScriptClient (internal/systemtest) runs these after the client's
// own, with the same CLERKSYNC_TS_TARGETS.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createEnsureClient } from "@clerksync/ensure";

import { checkout, me, type PaymentProvider } from "../lib/provision.js";
import { provisioning } from "../lib/provisioning-state.js";

const raw = process.env.CLERKSYNC_TS_TARGETS;
if (!raw) throw new Error("CLERKSYNC_TS_TARGETS is not set: run these through go test ./internal/systemtest -run TestTypeScriptClient");
const targets = JSON.parse(raw) as {
  starter: string;
  unavailable: string;
  tokens: Record<"existing" | "deleted" | "slow", string>;
};
const starter = createEnsureClient({ baseUrl: targets.starter });
const unavailable = createEnsureClient({ baseUrl: targets.unavailable, retries: 0 });

/** A payment provider that records the customers it creates. */
function recordingPayments() {
  const created: { email: string | null; userId: string }[] = [];
  const payments: PaymentProvider = {
    async createCustomer(input) {
      created.push(input);
      return { id: `cus_${created.length}` };
    },
  };
  return { created, payments };
}

test("me: the signed-in user's row", async () => {
  const res = await me(targets.tokens.existing, starter);
  assert.equal(res.status, 200);
  const row = (await res.json()) as { clerk_id: string; id: string };
  assert.match(row.clerk_id, /^user_/);
});

test("me: no session is 401, without asking clerksync", async () => {
  assert.equal((await me(null, unavailable)).status, 401);
});

test("me: a deleted user is 410; clerksync unavailable is 503 with Retry-After", async () => {
  assert.equal((await me(targets.tokens.deleted, starter)).status, 410);
  const res = await me(targets.tokens.slow, unavailable);
  assert.equal(res.status, 503);
  assert.match(res.headers.get("Retry-After") ?? "", /^[0-9]+$/);
});

test("checkout: the customer is created for the provisioned user's row", async () => {
  const { created, payments } = recordingPayments();
  const res = await checkout(targets.tokens.existing, starter, payments);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { customerId: string; userId: string };
  assert.deepEqual(created, [{ email: created[0]?.email ?? null, userId: body.userId }]);
  assert.equal(body.customerId, "cus_1");
});

test("checkout: no customer for a user who cannot be provisioned", async () => {
  const { created, payments } = recordingPayments();
  assert.equal((await checkout(targets.tokens.deleted, starter, payments)).status, 410);
  assert.equal((await checkout(targets.tokens.slow, unavailable, payments)).status, 503);
  assert.equal((await checkout(null, starter, payments)).status, 401);
  assert.deepEqual(created, [], "no orphaned customer");
});

test("provider: loading after sign-in, then ready, once; errors say whether to retry", () => {
  let s = provisioning({ status: "signed-out" }, { type: "signed-in" });
  assert.equal(s.status, "loading");
  s = provisioning(s, { type: "answered", status: 503, body: { error: "x" } });
  assert.deepEqual(s, { status: "error", message: "try again shortly", retryable: true });
  s = provisioning(s, { type: "retry" });
  assert.equal(s.status, "loading");
  const user = { id: "u", clerk_id: "user_1" };
  s = provisioning(s, { type: "answered", status: 200, body: user });
  assert.equal(s.status, "ready");
  assert.equal(provisioning(s, { type: "signed-in" }), s, "a ready user is not ensured again");
  const gone = provisioning({ status: "loading" }, { type: "answered", status: 410, body: {} });
  assert.deepEqual(gone, { status: "error", message: "this account was deleted", retryable: false });
  assert.equal(provisioning(gone, { type: "retry" }), gone, "no retry for a deleted user");
  assert.deepEqual(provisioning(s, { type: "signed-out" }), { status: "signed-out" });
});
