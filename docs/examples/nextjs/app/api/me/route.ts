// POST /api/me: forwards the signed-in user's Clerk session token to
// clerksync and answers their row (created if the webhook is not there yet).
import { auth } from "@clerk/nextjs/server";

import { clerksync } from "../../../lib/clerksync.js";
import { me } from "../../../lib/provision.js";

export async function POST(): Promise<Response> {
  const { getToken } = await auth();
  return me(await getToken(), clerksync);
}
