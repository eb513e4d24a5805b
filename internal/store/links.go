package store

// The app's rows from before Clerk: linked to their Clerk users by the
// mapping's users.link (external_id, verified email) before a write.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// linkLegacyRows gives each of the app's rows from before Clerk (no Clerk
// ID) that one of users links to (by external_id, then by verified email,
// as the mapping's users.link says) that user's Clerk ID, so the write that
// follows updates the row the app's data already hangs from, instead of
// inserting a second row that its unique email refuses.
func (s *Store) linkLegacyRows(ctx context.Context, tx pgx.Tx, users *sqlgen.Users, us []clerkevent.User) error {
	b := &pgx.Batch{}
	s.queueLinks(b, users, us)
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("link rows from before Clerk: %w", err)
	}
	return nil
}

// queueLinks queues linkLegacyRows's statements for us, none when the
// mapping links no rows or no user carries what it links by.
func (s *Store) queueLinks(b *pgx.Batch, users *sqlgen.Users, us []clerkevent.User) {
	if ids, externals := externalIDs(us, users.KeyKind); users.Link != "" && len(ids) > 0 {
		b.Queue(users.Link, ids, externals)
	}
	if ids, emails := verifiedEmails(us); users.LinkEmail != "" && len(ids) > 0 {
		b.Queue(users.LinkEmail, ids, emails)
	}
}

// verifiedEmails are the Clerk IDs of the users of us whose primary email
// Clerk has verified, and those emails, in step.
func verifiedEmails(us []clerkevent.User) (ids, emails []string) {
	for _, u := range us {
		if u.Email != nil && *u.Email != "" && u.EmailVerified != nil && *u.EmailVerified {
			ids, emails = append(ids, u.ClerkID), append(emails, *u.Email)
		}
	}
	return ids, emails
}

// externalIDs are the Clerk IDs of the users of us that carry an
// external_id the key's type (keyKind, externalIDKind's) can hold, and
// those external_ids, in step: one it cannot hold names no row, and would
// fail the statement's cast.
func externalIDs(us []clerkevent.User, keyKind string) (ids, externals []string) {
	for _, u := range us {
		if u.ExternalID != nil && *u.ExternalID != "" && sqlgen.KeyHolds(keyKind, *u.ExternalID) {
			ids, externals = append(ids, u.ClerkID), append(externals, *u.ExternalID)
		}
	}
	return ids, externals
}
