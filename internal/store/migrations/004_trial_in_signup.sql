-- A new user's trial is written in the transaction that first writes the
-- user's data, once per user, ever: trial_granted_at records that it was, so
-- a product that deletes a subscription row does not hand out a second trial.
alter table users add column trial_granted_at timestamptz;
update users u set trial_granted_at = s.created_at
from subscriptions s
where s.user_id = u.id and s.plan = 'trial';

-- The expiry schedule finds due trials by this index, not by a scan.
create index subscriptions_trialing_ends_idx on subscriptions (trial_ends_at)
    where status = 'trialing';

---- create above / drop below ----

drop index subscriptions_trialing_ends_idx;
alter table users drop column trial_granted_at;
