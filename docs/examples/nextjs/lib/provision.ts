// The provisioning patterns, as plain functions of a session token and an
// ensure client, so the route handlers stay one line and the patterns are
// tested against a real starter (test/provision.test.ts).
import type { EnsureClient, EnsureError, User } from "@clerksync/ensure";

/** The answer a route gives when the user has no row: the reason, and when to come back. */
export function refusal(error: EnsureError): Response {
  switch (error.kind) {
    case "unauthorized":
      return Response.json({ error: "sign in again" }, { status: 401 });
    case "deleted":
      return Response.json({ error: "this account was deleted" }, { status: 410 });
    case "unavailable":
      return Response.json(
        { error: "try again shortly" },
        { status: 503, headers: { "Retry-After": String(error.retryAfterSeconds) } },
      );
    case "timeout":
      return Response.json({ error: "try again shortly" }, { status: 503, headers: { "Retry-After": "1" } });
    case "rejected": // this app's clerksync settings (its key, the starter's address): an operator's to fix
    case "failed":
      console.error(`clerksync ensure: ${error.kind} (${error.status}): ${error.message}`);
      return Response.json({ error: "something went wrong on our side" }, { status: 500 });
  }
}

/**
 * The signed-in user's row (POST /api/me): what the client-side provider
 * waits for before it lets the app query anything keyed on the user.
 */
export async function me(sessionToken: string | null, clerksync: EnsureClient): Promise<Response> {
  if (!sessionToken) return Response.json({ error: "sign in first" }, { status: 401 });
  const result = await clerksync.ensureUser(sessionToken);
  return result.ok ? Response.json(result.user) : refusal(result.error);
}

/** What checkout needs of a payment provider (Stripe's customers.create, say). */
export interface PaymentProvider {
  createCustomer(input: { email: string | null; userId: string }): Promise<{ id: string }>;
}

/**
 * Checkout (POST /api/checkout): the user's row first, then the payment
 * provider's customer, keyed on the row's ID. A user who cannot be
 * provisioned (deleted, or clerksync unavailable) gets no customer, so
 * none is left without a user behind it.
 */
export async function checkout(
  sessionToken: string | null,
  clerksync: EnsureClient,
  payments: PaymentProvider,
): Promise<Response> {
  if (!sessionToken) return Response.json({ error: "sign in first" }, { status: 401 });
  const result = await clerksync.ensureUser<User>(sessionToken);
  if (!result.ok) return refusal(result.error);
  const customer = await payments.createCustomer({ email: result.user.email, userId: result.user.id });
  return Response.json({ customerId: customer.id, userId: result.user.id });
}
