// The client against a running starter, for real: the Go test
// TestTypeScriptClient (internal/systemtest) starts the system, makes
// session tokens with the fake Clerk and runs these with their addresses in
// CLERKSYNC_TS_TARGETS.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { createEnsureClient, type User } from "../src/index.js";

interface Targets {
  /** A starter with a worker behind it. */
  starter: string;
  /** A starter whose Temporal is unreachable (503). */
  unavailable: string;
  /** A starter no worker serves, with a short ENSURE_TIMEOUT (504). */
  slow: string;
  /** An address nothing listens on. */
  nowhere: string;
  /** A starter with a worker behind it that wants apiKey (ENSURE_API_KEYS). */
  keyed: string;
  apiKey: string;
  /** Session tokens; slow's user has no row, and none appears. */
  tokens: { existing: string; fresh: string; deleted: string; forged: string; slow: string };
  existingEmail: string;
}

const raw = process.env.CLERKSYNC_TS_TARGETS;
if (!raw) {
  throw new Error("CLERKSYNC_TS_TARGETS is not set: run these through go test ./internal/systemtest -run TestTypeScriptClient (make test does)");
}
const targets = JSON.parse(raw) as Targets;

/** A fetch that counts its calls. */
function counting() {
  const counter = { calls: 0, fetch: (input: Request) => (counter.calls++, fetch(input)) };
  return counter;
}

test("200: an existing user's row, typed", async () => {
  const result = await createEnsureClient({ baseUrl: targets.starter }).ensureUser(targets.tokens.existing);
  assert.ok(result.ok, JSON.stringify(result));
  const user: User = result.user;
  assert.match(user.clerk_id, /^user_/);
  assert.equal(user.email, targets.existingEmail);
  assert.match(user.id, /^[0-9a-f-]{36}$/);
});

test("200: a user no webhook brought yet gets a row at once", async () => {
  const result = await createEnsureClient({ baseUrl: targets.starter }).ensureUser(targets.tokens.fresh);
  assert.ok(result.ok, JSON.stringify(result));
  assert.match(result.user.clerk_id, /^user_/);
});

test("401: a forged token is refused, and not retried", async () => {
  const c = counting();
  const result = await createEnsureClient({ baseUrl: targets.starter, fetch: c.fetch }).ensureUser(targets.tokens.forged);
  assert.deepEqual(result.ok ? null : result.error.kind, "unauthorized");
  assert.equal(c.calls, 1);
});

test("410: a deleted user stays deleted", async () => {
  const c = counting();
  const result = await createEnsureClient({ baseUrl: targets.starter, fetch: c.fetch }).ensureUser(targets.tokens.deleted);
  assert.ok(!result.ok);
  assert.equal(result.error.kind, "deleted");
  assert.equal(result.error.status, 410);
  assert.equal(c.calls, 1);
});

test("503: unavailable, with the starter's Retry-After, retried within the bound", async () => {
  const c = counting();
  const client = createEnsureClient({ baseUrl: targets.unavailable, fetch: c.fetch, retries: 1, maxRetryWaitMs: 20 });
  const result = await client.ensureUser(targets.tokens.slow);
  assert.ok(!result.ok);
  assert.equal(result.error.kind, "unavailable");
  assert.ok(result.error.kind === "unavailable" && result.error.retryAfterSeconds > 0, JSON.stringify(result.error));
  assert.equal(c.calls, 2, "one try and one retry");
});

test("504: the row did not come in time, retried within the bound", async () => {
  const c = counting();
  const client = createEnsureClient({ baseUrl: targets.slow, fetch: c.fetch, retries: 1, timeoutRetryWaitMs: 10 });
  const result = await client.ensureUser(targets.tokens.slow);
  assert.ok(!result.ok);
  assert.equal(result.error.kind, "timeout");
  assert.equal(c.calls, 2);
});

test("no answer at all is unavailable", async () => {
  const result = await createEnsureClient({ baseUrl: targets.nowhere, retries: 0 }).ensureUser(targets.tokens.slow);
  assert.ok(!result.ok);
  assert.equal(result.error.kind, "unavailable");
  assert.equal(result.error.status, 0);
});

test("an aborted call rejects with the abort, and does not retry", async () => {
  const c = counting();
  const client = createEnsureClient({ baseUrl: targets.unavailable, fetch: c.fetch, retries: 5, maxRetryWaitMs: 60_000 });
  const abort = new AbortController();
  const pending = client.ensureUser(targets.tokens.slow, { signal: abort.signal });
  setTimeout(() => abort.abort(new Error("gave up")), 200);
  await assert.rejects(pending, /gave up/);
  assert.equal(c.calls, 1);
});

test("403: a starter that wants the backend's key refuses a call without it or with another, and is not retried", async () => {
  for (const apiKey of [undefined, "not-the-key-".repeat(4)]) {
    const c = counting();
    const result = await createEnsureClient({ baseUrl: targets.keyed, apiKey, fetch: c.fetch }).ensureUser(targets.tokens.existing);
    assert.ok(!result.ok);
    assert.equal(result.error.kind, "rejected");
    assert.equal(result.error.status, 403);
    assert.match(result.error.message, /Clerksync-Key/);
    assert.equal(c.calls, 1);
  }
});

test("200: with the backend's key, the keyed starter answers the row", async () => {
  const result = await createEnsureClient({ baseUrl: targets.keyed, apiKey: targets.apiKey }).ensureUser(targets.tokens.existing);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal((result.user as User).email, targets.existingEmail);
});

test("an answer ensure never gives is no outage: 4xx is rejected, 5xx but 503 and 504 failed, neither retried", async () => {
  // What a wrong baseUrl, a proxy or a broken starter answers.
  let status = 0;
  const server = createServer((_req, res) => {
    res.writeHead(status, { "Content-Type": "text/html" }).end("<html>not the starter</html>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const [code, kind] of [[400, "rejected"], [404, "rejected"], [413, "rejected"], [429, "rejected"], [500, "failed"], [502, "failed"]] as const) {
      status = code;
      const c = counting();
      const result = await createEnsureClient({ baseUrl, fetch: c.fetch, retries: 3 }).ensureUser(targets.tokens.existing);
      assert.ok(!result.ok);
      assert.deepEqual([result.error.kind, result.error.status], [kind, code]);
      assert.equal(c.calls, 1, `${code} is not retried`);
    }
  } finally {
    server.close();
  }
});
