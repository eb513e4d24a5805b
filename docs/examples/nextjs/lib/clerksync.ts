// The one ensure client of the app, for its server code: the starter's
// address comes from the environment (CLERKSYNC_STARTER_URL).
import { createEnsureClient } from "@clerksync/ensure";

export const clerksync = createEnsureClient({
  baseUrl: process.env.CLERKSYNC_STARTER_URL ?? "http://127.0.0.1:8080",
});
