// The payment provider: Stripe's POST /v1/customers, with the user's row ID
// in the customer's metadata so a webhook from Stripe finds the user.
import type { PaymentProvider } from "./provision.js";

export const stripe: PaymentProvider = {
  async createCustomer({ email, userId }) {
    const form = new URLSearchParams({ "metadata[user_id]": userId });
    if (email) form.set("email", email);
    const res = await fetch("https://api.stripe.com/v1/customers", {
      method: "POST",
      headers: { Authorization: `Bearer ${process.env.STRIPE_SECRET_KEY ?? ""}` },
      body: form,
    });
    if (!res.ok) throw new Error(`stripe: ${res.status}`);
    return (await res.json()) as { id: string };
  },
};
