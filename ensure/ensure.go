// Package ensure is the lazy path of clerksync, for the product's own Go
// backend: Ensure returns the local row of a Clerk user, creating it through
// the user's workflow when the webhook has not arrived yet (or was lost).
//
//	ensurer, err := ensure.New(ensure.Options{Temporal: tc, Pool: pool})
//	user, err := ensurer.Ensure(ctx, claims.Subject)
//
// The fast path is one indexed SELECT and no Temporal call, for a row with
// the user's data from Clerk. On a miss it signals-with-start the user's
// workflow (user/<clerk_id>, with the task queue in front on any but the
// default: contract.UserWorkflowID), which writes a minimal row at once and
// fetches the full profile from Clerk behind it, and waits, bounded, for
// the row. A minimal row it finds is returned at once, and the same signal,
// sent in the background at most once a minute per user, has the workflow
// fill it (and grant the trial) whichever path wrote it. Backends in other
// languages use the same path over HTTP: POST /v1/users/ensure on the
// starter.
//
// The package links pgx, the Temporal SDK and clerksync's row code, and
// nothing of the worker or the starter: no migrations, no OpenID Connect,
// no OpenTelemetry, no Prometheus (ensure/ensuremetrics adds that).
package ensure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/store"
)

// User is the user's row: clerksync's users table's, or the product's
// mapped one. Its JSON is the row's, by the table's own column names, plus
// clerk_id; Decode reads it into a struct of the columns the caller needs.
type User struct {
	// ID is the row's primary key, as text.
	ID string
	// ClerkID is the Clerk user ID, user_...
	ClerkID string
	// Row is the row as JSON: PostgreSQL's to_jsonb, times in RFC 3339.
	Row json.RawMessage
}

// MarshalJSON writes the row, as ensure's HTTP endpoint answers it.
func (u User) MarshalJSON() ([]byte, error) { return u.Row, nil }

// Decode decodes the row's JSON into v, a struct of the columns the caller
// reads.
func (u User) Decode(v any) error { return json.Unmarshal(u.Row, v) }

func userOf(r store.User) User { return User{ID: r.ID, ClerkID: r.ClerkID, Row: r.Row} }

var (
	// ErrDeleted: the user was deleted in Clerk and must not come back.
	ErrDeleted = errors.New("user was deleted in Clerk")
	// ErrUnavailable: Temporal did not accept the ensure; retry later.
	ErrUnavailable = errors.New("temporal unavailable")
	// ErrTimeout: the row did not appear within the timeout. The workflow
	// keeps going, so a retry will find it.
	ErrTimeout = errors.New("timed out waiting for the user's row")
	// ErrInvalidID: the Clerk user ID cannot be a Clerk user ID.
	ErrInvalidID = errors.New("invalid Clerk user ID")
)

// Defaults of Options: those of ENSURE_TIMEOUT and TEMPORAL_TASK_QUEUE.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultTaskQueue = contract.DefaultTaskQueue
)

// Paths an ensure takes, as an Observer is told.
const (
	// PathFast: the row was there (one indexed SELECT, no Temporal call).
	PathFast = "fast"
	// PathSlow: the row was missing, so the ensure went through Temporal.
	PathSlow = "slow"
)

// Outcomes of an ensure, as an Observer is told.
const (
	OutcomeOK          = "ok"
	OutcomeDeleted     = "deleted"
	OutcomeTimeout     = "timeout"
	OutcomeUnavailable = "unavailable"
	OutcomeInvalid     = "invalid"
)

// Outcome names what an error returned by Ensure means.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrDeleted):
		return OutcomeDeleted
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, ErrInvalidID):
		return OutcomeInvalid
	default:
		return OutcomeUnavailable
	}
}

// Observer is told of every Ensure call: its path, its outcome and how
// long it took. ensuremetrics implements it with Prometheus series, in a
// package of its own so that a product without Prometheus does not link it.
type Observer interface {
	ObserveEnsure(path, outcome string, took time.Duration)
}

// Waiting polls with backoff between these bounds: the first look comes
// almost at once (the workflow writes the minimal row in milliseconds), later
// ones ever less often, so a slow workflow is not met by a hammered database.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// Options configure an Ensurer.
type Options struct {
	// Temporal is the client the ensure signal goes through. Required.
	Temporal client.Client
	// Pool reaches clerksync's database. Required; the caller closes it.
	Pool *pgxpool.Pool
	// Schema is clerksync's bookkeeping schema (CLERKSYNC_SCHEMA); empty
	// is the default, "clerksync".
	Schema string
	// MappingFile is the mapping onto the product's own tables
	// (CLERKSYNC_MAPPING), the worker's; empty for clerksync's own tables.
	MappingFile string
	// TaskQueue is where clerksync's worker polls (TEMPORAL_TASK_QUEUE).
	TaskQueue string
	// Timeout bounds the whole call (ENSURE_TIMEOUT).
	Timeout time.Duration
	// Metrics, when set, is told of every call (ensuremetrics.New counts
	// them in Prometheus).
	Metrics Observer
}

// ClientOptions returns opts set up to read and write clerksync's
// workflows: payloads encrypted with payloadKeys (PAYLOAD_KEYS, as the
// worker has them; empty for none). Dial the client the Ensurer uses with
// them, or its signals reach the worker in a form it cannot read.
func ClientOptions(opts client.Options, payloadKeys string) (client.Options, error) {
	keys, err := payloadcodec.ParseKeys(payloadKeys)
	if err != nil {
		return client.Options{}, err
	}
	payloadcodec.Apply(&opts, keys)
	return opts, nil
}

// Ensurer ensures users. It is safe for concurrent use.
type Ensurer struct {
	store *store.Store
	opts  Options

	mu sync.Mutex
	// nudged is when each user's workflow was last nudged (see nudge).
	nudged map[string]time.Time
}

// New checks the options and fills in defaults.
func New(o Options) (*Ensurer, error) {
	if o.Temporal == nil || o.Pool == nil {
		return nil, errors.New("ensure: Options.Temporal and Options.Pool are required")
	}
	if o.TaskQueue == "" {
		o.TaskQueue = DefaultTaskQueue
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	layout := store.Layout{Schema: o.Schema}
	if o.MappingFile != "" {
		m, err := mapping.Load(o.MappingFile)
		if err != nil {
			return nil, fmt.Errorf("ensure: %w", err)
		}
		layout.Mapping = m
	}
	st, err := store.New(o.Pool, layout)
	if err != nil {
		return nil, fmt.Errorf("ensure: %w", err)
	}
	return &Ensurer{store: st, opts: o, nudged: map[string]time.Time{}}, nil
}

// Ensure returns the user's row, making sure it exists, within the Timeout:
// one deadline covers the lookup, the signal and the wait, so a database or a
// Temporal that hangs cannot hold the caller longer. Errors wrap
// ErrInvalidID, ErrDeleted, ErrUnavailable or ErrTimeout, or a database
// error.
func (e *Ensurer) Ensure(ctx context.Context, clerkID string) (u User, err error) {
	began, path := time.Now(), PathFast
	if e.opts.Metrics != nil {
		defer func() { e.opts.Metrics.ObserveEnsure(path, Outcome(err), time.Since(began)) }()
	}
	if err := clerkevent.ValidateClerkID(clerkID); err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	row, err := e.store.UserByClerkID(ctx, clerkID)
	switch {
	case err == nil && !row.Minimal():
		return userOf(row), nil
	case err == nil:
		// A minimal row (an earlier ensure's, or a membership's member):
		// the user's workflow fills it from Clerk, with the trial a signup
		// gets, while the product goes on with the row it has.
		e.nudge(ctx, clerkID)
		return userOf(row), nil
	case errors.Is(err, store.ErrRowLeft):
		// The deletion stands, but its row is still there: the nudge lets
		// the user's workflow finish removing it (as does any later write
		// that meets the tombstone).
		e.nudge(ctx, clerkID)
		return User{}, fmt.Errorf("ensure %s: %w", clerkID, ErrDeleted)
	case errors.Is(err, store.ErrDeleted):
		return User{}, fmt.Errorf("ensure %s: %w", clerkID, ErrDeleted)
	case !errors.Is(err, store.ErrNotFound):
		return User{}, err
	}
	path = PathSlow
	if err := e.signal(ctx, clerkID); err != nil {
		return User{}, err
	}
	return e.wait(ctx, clerkID)
}

// lookup reads the user's row, telling a deleted user from an unknown one.
func (e *Ensurer) lookup(ctx context.Context, clerkID string) (User, error) {
	row, err := e.store.UserByClerkID(ctx, clerkID)
	if errors.Is(err, store.ErrDeleted) {
		return User{}, fmt.Errorf("ensure %s: %w", clerkID, ErrDeleted)
	}
	return userOf(row), err
}

// nudgeEvery bounds how often one process signals a user's workflow for a
// row it already serves (a minimal row to fill, a deletion to finish): a
// user whose profile Clerk cannot give (a key of another instance answers
// 404) would otherwise cost a workflow run and a Clerk request per ensure.
const nudgeEvery = time.Minute

// nudge signals the user's workflow in the background, at most once per
// nudgeEvery for a user: the answer does not wait for it, and does not
// fail when Temporal is away (the row is served either way; the next
// nudge or webhook does the work).
func (e *Ensurer) nudge(ctx context.Context, clerkID string) {
	now := time.Now()
	e.mu.Lock()
	if last, ok := e.nudged[clerkID]; ok && now.Sub(last) < nudgeEvery {
		e.mu.Unlock()
		return
	}
	if len(e.nudged) >= maxNudged {
		for id, at := range e.nudged {
			if now.Sub(at) >= nudgeEvery {
				delete(e.nudged, id)
			}
		}
	}
	e.nudged[clerkID] = now
	e.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeout)
		defer cancel()
		_ = e.signal(ctx, clerkID) // best effort, as the comment above says
	}()
}

// maxNudged is how many users' nudge times an Ensurer holds before it drops
// the expired ones.
const maxNudged = 10000

func (e *Ensurer) signal(ctx context.Context, clerkID string) error {
	opts := contract.User.StartOptions(clerkID, e.opts.TaskQueue)
	in := contract.UserStart{ClerkID: clerkID}
	req := contract.EnsureRequest{RequestedAt: time.Now().UTC()}
	if _, err := e.opts.Temporal.SignalWithStartWorkflow(ctx, opts.ID, contract.EnsureSignal, req, opts, contract.UserWorkflowType, in); err != nil {
		return fmt.Errorf("ensure %s: %w: %w", clerkID, ErrUnavailable, err)
	}
	return nil
}

// wait polls, with backoff, until the row exists or the user turns out
// deleted, until ctx's deadline.
func (e *Ensurer) wait(ctx context.Context, clerkID string) (User, error) {
	for delay := firstPoll; ; delay = min(2*delay, maxPoll) {
		select {
		case <-ctx.Done():
			return User{}, fmt.Errorf("ensure %s: %w", clerkID, ErrTimeout)
		case <-time.After(delay):
		}
		u, err := e.lookup(ctx, clerkID)
		switch {
		case err == nil:
			return u, nil
		case errors.Is(err, store.ErrNotFound):
			continue
		case ctx.Err() != nil:
			return User{}, fmt.Errorf("ensure %s: %w", clerkID, ErrTimeout)
		default:
			return User{}, err
		}
	}
}
