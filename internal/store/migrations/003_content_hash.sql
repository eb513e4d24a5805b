-- Tie-break for equal versions: two different payloads can carry the same
-- Clerk updated_at (millisecond precision). Last-writer-wins compares
-- (clerk_updated_at, content_hash), so every order of arrival keeps the same
-- one: the payload with the greater hash. Collation "C" makes the comparison
-- bytewise, the same as Go's string comparison in the workflow.
alter table users add column content_hash text collate "C" not null default '';

---- create above / drop below ----

alter table users drop column content_hash;
