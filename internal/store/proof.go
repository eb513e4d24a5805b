package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// proofTrial is the trial the proof grants its user.
const proofTrial = time.Hour

// ProveMapping writes what the mapping's statements write, on
// representative users, an organization and a membership, inside a
// transaction it rolls back: a signup with a trial, an update, two minimal
// rows (ensure's, whose missing values must not collide), the trial's
// expiry, a membership's write and removal, and the deletions. The catalog
// checks (CheckMapping) cannot see what only writing shows: a CHECK a
// missing value or a trial status breaks, a value too long for its column
// (a generated UUID key into varchar(20)), a missing value that is not
// JSON for a JSON column, a unique column that two users without a value
// would share. Each is a *MappingError naming the step, the table, the
// constraint or column, and a fix, before any event is lost to it.
//
// Nothing stays: the rows, tombstones and bookkeeping are rolled back. The
// product's identity sequences advance by the rows written, and its
// triggers run (their writes rolled back too). Without a mapping it does
// nothing: clerksync's own tables are proved by its tests.
func (s *Store) ProveMapping(ctx context.Context) error {
	if s.mapping == nil {
		return nil
	}
	if err := s.CheckMapping(ctx); err != nil {
		return err
	}
	var bookkept bool
	if err := s.pool.QueryRow(ctx, `select to_regclass($1) is not null`, s.schema+".user_state").Scan(&bookkept); err != nil {
		return fmt.Errorf("prove the mapping: %w", err)
	}
	if !bookkept {
		return ErrNoBookkeeping
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("prove the mapping: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	sql, err := s.statements(ctx)
	if err != nil {
		return fmt.Errorf("prove the mapping: %w", err)
	}
	proof := &Store{pool: s.pool, db: tx, schema: s.schema, bk: s.bk, mapping: s.mapping, compiled: sql}

	now := time.Now().UTC().Truncate(time.Millisecond)
	const userID, minimalA, minimalB, orgID = "user_clerksync_proof", "user_clerksync_proof_minimal_a", "user_clerksync_proof_minimal_b", "org_clerksync_proof"
	text := func(v string) *string { return &v }
	verified := true
	signup := clerkevent.User{ClerkID: userID, Email: text("clerksync-proof@example.invalid"), FirstName: text("Proof"), LastName: text("User"),
		Username: text("clerksync_proof"), ImageURL: text("https://img.clerk.com/proof"), EmailVerified: &verified,
		EmailAddresses: []string{"clerksync-proof@example.invalid"}, Phone: text("+15555550100"), ExternalID: text("clerksync-proof"),
		LastSignInAt: now, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	signup.Object = []byte(`{"id":"` + userID + `","object":"user"}`)
	update := signup
	update.FirstName, update.ClerkUpdatedAt = text("Proved"), now.Add(time.Second)
	org := clerkevent.Organization{ClerkID: orgID, Name: text("Proof"), Slug: text("clerksync-proof"), ClerkCreatedAt: now, ClerkUpdatedAt: now}
	member := clerkevent.Membership{ClerkID: "orgmem_clerksync_proof", UserID: userID, Role: "org:member", Organization: org,
		Permissions: []string{}, ClerkCreatedAt: now, ClerkUpdatedAt: now}

	steps := []proofStep{
		{"a signup and its trial", func() error { _, err := proof.UpsertUser(ctx, signup, proofTrial); return err }},
		{"an update", func() error { _, err := proof.UpsertUser(ctx, update, proofTrial); return err }},
		{"ensure's minimal row", func() error {
			_, err := proof.UpsertUser(ctx, clerkevent.User{ClerkID: minimalA, ClerkUpdatedAt: clerkevent.MinimalVersion}, 0)
			return err
		}},
		{"a second minimal row (another user without the same values)", func() error {
			_, err := proof.UpsertUser(ctx, clerkevent.User{ClerkID: minimalB, ClerkUpdatedAt: clerkevent.MinimalVersion}, 0)
			return err
		}},
		{"the trial's expiry", func() error {
			if sql.Trials == nil {
				return nil
			}
			if _, err := tx.Exec(ctx, sql.Trials.Due, userID); err != nil {
				return err
			}
			_, err := proof.ExpireDueTrials(ctx, 1000)
			return err
		}},
	}
	if sql.Organizations != nil {
		steps = append(steps,
			proofStep{"an organization", func() error { _, err := proof.UpsertOrganization(ctx, org); return err }},
			proofStep{"a membership", func() error { _, err := proof.UpsertMembership(ctx, member); return err }},
			proofStep{"a membership's removal", func() error { _, err := proof.DeleteMembership(ctx, member, now); return err }},
			proofStep{"an organization's deletion", func() error {
				if err := proof.TombstoneOrganization(ctx, orgID, now); err != nil {
					return err
				}
				_, err := proof.RemoveOrganizationRow(ctx, orgID)
				return err
			}})
	}
	steps = append(steps, proofStep{"a user's deletion", func() error {
		if err := proof.TombstoneUser(ctx, userID, now); err != nil {
			return err
		}
		_, err := proof.RemoveUserRow(ctx, userID)
		return err
	}})
	var problems []string
	for _, step := range steps {
		err := step.run()
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			continue
		case !errors.As(err, &pgErr) || s.Classify(err) == Transient:
			return fmt.Errorf("prove the mapping: %s: %w", step.name, err)
		}
		problems = append(problems, fmt.Sprintf("%s: %s", step.name, refusalProblem(pgErr)))
		break // a refused step leaves the transaction's later steps nothing to build on
	}
	if problems != nil {
		return &MappingError{Problems: strings.Join(problems, "\n")}
	}
	return nil
}

// proofStep is one write of ProveMapping's, named as its problem says.
type proofStep struct {
	name string
	run  func() error
}

// ErrNoBookkeeping: the proof by writing needs clerksync's bookkeeping
// schema, which the worker creates at its first start (and proves the
// mapping then).
var ErrNoBookkeeping = errors.New("clerksync's bookkeeping schema is not there yet: the worker creates it at its first start and proves the mapping by writing then")

// refusalProblem says what PostgreSQL refused in a proof's write, with the
// fix.
func refusalProblem(e *pgconn.PgError) string {
	where := e.SchemaName + "." + e.TableName
	if e.TableName == "" {
		where = "a mapped table"
	}
	switch e.Code {
	case pgerrcode.CheckViolation:
		return fmt.Sprintf("table %s refuses it by CHECK %s: a value the mapping writes (a missing value, a trial status) is not one the CHECK allows; write one it does, or widen the CHECK", where, e.ConstraintName)
	case pgerrcode.UniqueViolation:
		return fmt.Sprintf("table %s refuses it by unique %s: two users without a value of their own get the same missing value; make the column nullable without a missing value, or drop the unique index", where, e.ConstraintName)
	case pgerrcode.NotNullViolation:
		return fmt.Sprintf("table %s, column %s: NOT NULL, and the write left it empty; give it a default or map it with a missing value", where, e.ColumnName)
	case pgerrcode.StringDataRightTruncationDataException:
		return fmt.Sprintf("%s: a value is too long for its column (%s); widen the column (a generated key is a 36-character UUID)", where, e.Message)
	case pgerrcode.InvalidTextRepresentation, pgerrcode.InvalidParameterValue:
		return fmt.Sprintf("%s: %s; a JSON column's missing value must be JSON, such as {} or []", where, e.Message)
	case pgerrcode.ForeignKeyViolation:
		return fmt.Sprintf("table %s refuses it by foreign key %s: a row the mapping writes references one it does not write", where, e.ConstraintName)
	}
	return fmt.Sprintf("%s refuses it: %s (SQLSTATE %s)", where, e.Message, e.Code)
}
