package activities

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/internal/store"
)

// RedactingInterceptor is the boundary every activity's error crosses on its
// way into Temporal: a PostgreSQL error there can quote a user's data (an
// email in an invalid input, a name in a constraint's detail), and an
// error's text becomes a workflow's failure message, visible to whoever
// reads the cluster. It rewrites such errors with store.Redact, keeping an
// ApplicationError's type and retryability. Register it on every worker
// that runs these activities (syncworker does).
type RedactingInterceptor struct {
	interceptor.WorkerInterceptorBase
}

// InterceptActivity wraps every activity, local ones included.
func (*RedactingInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &redactingActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type redactingActivity struct {
	interceptor.ActivityInboundInterceptorBase
}

func (r *redactingActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := r.Next.ExecuteActivity(ctx, in)
	return res, redact(err)
}

func redact(err error) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return err
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		opts := temporal.ApplicationErrorOptions{NonRetryable: appErr.NonRetryable()}
		var r Refusal
		if appErr.HasDetails() && appErr.Details(&r) == nil {
			opts.Details = []any{r} // names only: nothing to redact
		}
		return temporal.NewApplicationErrorWithOptions(store.RedactText(appErr.Message(), pgErr), appErr.Type(), opts)
	}
	return store.Redact(err)
}
