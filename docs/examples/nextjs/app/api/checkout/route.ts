// POST /api/checkout: the user's row before the payment provider's
// customer, so a user who cannot be provisioned gets no orphaned customer.
import { auth } from "@clerk/nextjs/server";

import { clerksync } from "../../../lib/clerksync.js";
import { stripe } from "../../../lib/payments.js";
import { checkout } from "../../../lib/provision.js";

export async function POST(): Promise<Response> {
  const { getToken } = await auth();
  return checkout(await getToken(), clerksync, stripe);
}
