"use client";
// Calls the app's ensure route once after sign-in and holds what depends on
// the user's row (queries keyed on users.id) until the row exists, with a
// loading state and an error state that offers a retry when one can help.
import { useAuth } from "@clerk/nextjs";
import { createContext, useContext, useEffect, useReducer, type ReactNode } from "react";

import { provisioning, type ProvisioningState } from "../../lib/provisioning-state.js";

const UserContext = createContext<ProvisioningState>({ status: "signed-out" });

/** The provisioned user's state, for components below UserProvider. */
export function useProvisionedUser(): ProvisioningState {
  return useContext(UserContext);
}

export function UserProvider({ children }: { children: ReactNode }) {
  const { isLoaded, isSignedIn } = useAuth();
  const [state, dispatch] = useReducer(provisioning, { status: "signed-out" });

  useEffect(() => {
    if (isLoaded) dispatch({ type: isSignedIn ? "signed-in" : "signed-out" });
  }, [isLoaded, isSignedIn]);

  useEffect(() => {
    if (state.status !== "loading") return;
    const abort = new AbortController();
    fetch("/api/me", { method: "POST", signal: abort.signal })
      .then(async (res) => dispatch({ type: "answered", status: res.status, body: await res.json() }))
      .catch(() => {
        if (!abort.signal.aborted) dispatch({ type: "network-error" });
      });
    return () => abort.abort();
  }, [state.status]);

  return (
    <UserContext.Provider value={state}>
      {state.status === "loading" && <p role="status">Setting up your account…</p>}
      {state.status === "error" && (
        <p role="alert">
          {state.message}
          {state.retryable && (
            <button type="button" onClick={() => dispatch({ type: "retry" })}>
              Retry
            </button>
          )}
        </p>
      )}
      {(state.status === "ready" || state.status === "signed-out") && children}
    </UserContext.Provider>
  );
}
