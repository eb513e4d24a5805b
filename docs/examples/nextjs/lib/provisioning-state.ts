// The client-side provider's states, as a reducer: signed out, waiting for
// the row, ready with it, or failed with a reason and whether a retry may
// help. Kept apart from React so it is tested in plain Node.
import type { User } from "@clerksync/ensure";

export type ProvisioningState =
  | { status: "signed-out" }
  | { status: "loading" }
  | { status: "ready"; user: User }
  | { status: "error"; message: string; retryable: boolean };

export type ProvisioningEvent =
  | { type: "signed-in" }
  | { type: "signed-out" }
  | { type: "answered"; status: number; body: unknown }
  | { type: "network-error" }
  | { type: "retry" };

export function provisioning(state: ProvisioningState, event: ProvisioningEvent): ProvisioningState {
  switch (event.type) {
    case "signed-out":
      return { status: "signed-out" };
    case "signed-in":
      // Ensure once per sign-in: a ready user stays ready.
      return state.status === "ready" ? state : { status: "loading" };
    case "retry":
      return state.status === "error" && state.retryable ? { status: "loading" } : state;
    case "network-error":
      return { status: "error", message: "cannot reach the server", retryable: true };
    case "answered":
      if (event.status === 200) return { status: "ready", user: event.body as User };
      if (event.status === 410) return { status: "error", message: "this account was deleted", retryable: false };
      if (event.status === 401) return { status: "error", message: "sign in again", retryable: false };
      return { status: "error", message: "try again shortly", retryable: true };
  }
}
