// The one ensure client of the app, for its server code: the starter's
// address comes from the environment (CLERKSYNC_STARTER_URL), and so does
// the key that shows the starter the call comes from this backend
// (CLERKSYNC_ENSURE_KEY, one of the starter's ENSURE_API_KEYS): server-only
// variables, never NEXT_PUBLIC_.
import { createEnsureClient } from "@clerksync/ensure";

export const clerksync = createEnsureClient({
  baseUrl: process.env.CLERKSYNC_STARTER_URL ?? "http://127.0.0.1:8080",
  apiKey: process.env.CLERKSYNC_ENSURE_KEY,
});
