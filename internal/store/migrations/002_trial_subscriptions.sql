-- A user has at most one subscription per plan: a second trial insert (a
-- webhook retry, an ensure, a backfill racing) is impossible, not just unlikely.
create unique index subscriptions_user_id_plan_key on subscriptions (user_id, plan);

---- create above / drop below ----

drop index subscriptions_user_id_plan_key;
