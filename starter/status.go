package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/starter/service"
	"github.com/clerksync/clerksync/workflows"
)

// userStatus is what `starter status` prints: the row, and the user's
// workflows as Temporal knows them.
type userStatus struct {
	ClerkID string `json:"clerk_id"`
	// Row is the user's row: live, or for a deleted user the row a soft
	// deletion keeps (RowSoftDeleted) or one waiting for its removal.
	Row            *store.User `json:"row"`
	RowSoftDeleted bool        `json:"row_soft_deleted,omitempty"`
	Deleted        bool        `json:"deleted"`
	// Erasure says, for a deleted user, whether its runs are erased from
	// Temporal yet.
	Erasure *store.ErasureState `json:"erasure,omitempty"`
	User    *workflowStatus     `json:"user_workflow"`
	Trial   *store.Subscription `json:"trial"`
}

type workflowStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// State is the latest run's state query (a workflows.UserState or
	// OrganizationState); StateError says why it is missing (a closed run's
	// query needs a worker to replay it).
	State      any    `json:"state,omitempty"`
	StateError string `json:"state_error,omitempty"`
}

// organizationStatus is what `starter status org_...` prints.
type organizationStatus struct {
	ClerkID string `json:"clerk_id"`
	// Row is the organization's row, by its table's column names.
	Row      json.RawMessage     `json:"row"`
	Members  []store.Member      `json:"members"`
	Deleted  bool                `json:"deleted"`
	Erasure  *store.ErasureState `json:"erasure,omitempty"`
	Workflow *workflowStatus     `json:"organization_workflow"`
}

// unknown reports that clerksync has nothing of the user.
func (s userStatus) unknown() bool {
	return s.Row == nil && !s.Deleted && s.User == nil && s.Trial == nil
}

// stateQueryTimeout bounds the state query, which waits for a worker.
const stateQueryTimeout = 5 * time.Second

// status prints one user's row and workflows as JSON, for operators.
func status(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: starter status <clerk_user_id | org_id>\n\nPrints the user's row (a deleted user's too, while the table keeps it:\nsoft-deleted, or waiting for its removal), whether it is tombstoned (and whether its runs are\nerased from Temporal yet), its newest user workflow run (with its state) and\nits trial subscription as JSON; for an organization, its\nrow, its members and its workflow. Exits non-zero when clerksync knows\nnothing of it.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("status takes exactly one Clerk user or organization ID")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	conns, err := service.Connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer conns.Close()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if strings.HasPrefix(fs.Arg(0), "org_") {
		o, err := lookupOrganization(ctx, conns.Store, conns.Temporal, cfg.TaskQueue, fs.Arg(0))
		if err != nil {
			return err
		}
		if o.Row == nil && !o.Deleted && o.Workflow == nil {
			return fmt.Errorf("clerksync has no organization %s: no row, no tombstone and no workflow", o.ClerkID)
		}
		return enc.Encode(o)
	}
	s, err := lookupStatus(ctx, conns.Store, conns.Temporal, cfg.TaskQueue, fs.Arg(0))
	if err != nil {
		return err
	}
	if s.unknown() {
		return fmt.Errorf("clerksync has no user %s: no row, no tombstone and no workflow (a webhook or an ensure creates one; `starter backfill` brings every Clerk user)", s.ClerkID)
	}
	return enc.Encode(s)
}

func lookupStatus(ctx context.Context, st *store.Store, tc client.Client, taskQueue, clerkID string) (userStatus, error) {
	s := userStatus{ClerkID: clerkID}
	rec, err := st.UserRecord(ctx, clerkID)
	if err != nil {
		return s, err
	}
	s.Row, s.RowSoftDeleted, s.Deleted = rec.Row, rec.SoftDeleted, rec.Tombstoned
	if s.Deleted {
		if s.Erasure, err = st.ErasureOf(ctx, contract.User, clerkID); err != nil {
			return s, err
		}
	}
	if s.User, err = describe(ctx, tc, contract.User.WorkflowID(taskQueue, clerkID)); err != nil {
		return s, err
	}
	if s.User != nil {
		if state, err := queryState[workflows.UserState](ctx, tc, s.User.ID); err != nil {
			s.User.StateError = err.Error()
		} else {
			s.User.State = state
		}
	}
	if s.Trial, err = st.TrialByClerkID(ctx, clerkID); err != nil {
		return s, err
	}
	return s, nil
}

func lookupOrganization(ctx context.Context, st *store.Store, tc client.Client, taskQueue, orgID string) (organizationStatus, error) {
	o := organizationStatus{ClerkID: orgID}
	row, members, err := st.OrganizationByClerkID(ctx, orgID)
	switch {
	case err == nil:
		o.Row, o.Members = row, members
	case errors.Is(err, store.ErrDeleted):
		o.Deleted = true
		if o.Erasure, err = st.ErasureOf(ctx, contract.Organization, orgID); err != nil {
			return o, err
		}
	case !errors.Is(err, store.ErrNotFound):
		return o, err
	}
	if o.Workflow, err = describe(ctx, tc, contract.Organization.WorkflowID(taskQueue, orgID)); err != nil {
		return o, err
	}
	if o.Workflow != nil {
		if state, err := queryState[workflows.OrganizationState](ctx, tc, o.Workflow.ID); err != nil {
			o.Workflow.StateError = err.Error()
		} else {
			o.Workflow.State = state
		}
	}
	return o, nil
}

// queryState asks the workflow's latest run for its state, as a T.
func queryState[T any](ctx context.Context, tc client.Client, workflowID string) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, stateQueryTimeout)
	defer cancel()
	v, err := tc.QueryWorkflow(ctx, workflowID, "", contract.StateQuery)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", workflowID, err)
	}
	var state T
	if err := v.Get(&state); err != nil {
		return nil, fmt.Errorf("decode %s state: %w", workflowID, err)
	}
	return &state, nil
}

// describe returns the latest run's status, or nil when the workflow never ran.
func describe(ctx context.Context, tc client.Client, id string) (*workflowStatus, error) {
	d, err := tc.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", id, err)
	}
	return &workflowStatus{ID: id, Status: d.GetWorkflowExecutionInfo().GetStatus().String()}, nil
}
