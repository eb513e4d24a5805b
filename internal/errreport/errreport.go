// Package errreport sends to Sentry what needs a person's attention: an
// event that failed for good, a write that keeps failing past its budget,
// Temporal refusing webhooks, a burst of signature failures. It reads them
// from the process's own log records (a slog.Handler beside the one that
// writes them), so a report carries exactly what the log line does: Clerk
// IDs, event types, Svix message IDs, workflow IDs and the database's
// SQLSTATE and constraint, never an email, a name or a secret, which no log
// line holds (the systemtests check both). Without SENTRY_DSN there is no
// Reporter and nothing is sent.
package errreport

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
)

// Options configure a Reporter.
type Options struct {
	// DSN is Sentry's project DSN (SENTRY_DSN); Environment its
	// environment (SENTRY_ENVIRONMENT, Sentry's default when empty).
	DSN, Environment string
	// Process names the binary (worker, starter); Release its release.
	Process, Release string
	// UIURL is the Temporal UI's base URL (TEMPORAL_UI_URL), and Namespace
	// the namespace: with both, a report links its workflow run.
	UIURL, Namespace string
}

// Reporter sends reports to one Sentry project.
type Reporter struct {
	client *sentry.Client
	opts   Options

	mu sync.Mutex
	// The signature failures of the current minute, and whether they were
	// reported: a burst is reported once a minute, not once a failure.
	burstStart    time.Time
	burstCount    int
	burstReported bool
}

// BurstThreshold is how many signature failures within a minute make a
// burst worth a report (a forged request or two is noise).
const BurstThreshold = 10

// New returns a Reporter for o.DSN.
func New(o Options) (*Reporter, error) {
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         o.DSN,
		Environment: o.Environment,
		Release:     "clerksync@" + o.Release,
		ServerName:  o.Process,
		// Nothing about the request, the user or the host's environment:
		// the report carries what the log line says, and no more.
		SendDefaultPII:   false,
		AttachStacktrace: false,
		Integrations:     func([]sentry.Integration) []sentry.Integration { return nil },
	})
	if err != nil {
		return nil, fmt.Errorf("SENTRY_DSN: %w", err)
	}
	return &Reporter{client: client, opts: o}, nil
}

// Flush waits up to timeout for the reports still being sent.
func (r *Reporter) Flush(timeout time.Duration) { r.client.Flush(timeout) }

// Handler returns next, with the records worth a report also sent to
// Sentry.
func (r *Reporter) Handler(next slog.Handler) slog.Handler { return &handler{next: next, r: r} }

// Messages of the log records that are reported.
const (
	msgEventFailed       = "Event could not be applied"
	msgWriteKeepsFailing = "A write keeps failing past its budget; it is retried until it lands"
	msgTemporalRefused   = "Temporal did not accept the event; Svix will retry"
	msgWebhookRefused    = "Webhook refused"
)

// WriteKeepsFailing is the log message of a write that keeps failing, for
// the activity that logs it.
const WriteKeepsFailing = msgWriteKeepsFailing

// tagKeys are the attributes a report carries as tags, by the key they
// have in a log line (the SDK's workflow and activity loggers name the run
// WorkflowID and RunID).
var tagKeys = map[string]string{
	"clerk_id": "clerk_id", "organization_id": "organization_id", "svix_id": "svix_id", "type": "event_type",
	"sqlstate": "sqlstate", "constraint": "constraint", "table": "table", "operation": "operation",
	"WorkflowID": "workflow_id", "RunID": "run_id", "ActivityType": "activity_type", "attempt": "attempt",
	"status": "status",
}

type handler struct {
	next  slog.Handler
	r     *Reporter
	attrs []slog.Attr
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	h.r.consider(rec, h.attrs)
	return h.next.Handle(ctx, rec)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(attrs), r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r, attrs: h.attrs}
}

// consider reports rec if it is one of the reported records.
func (r *Reporter) consider(rec slog.Record, attrs []slog.Attr) {
	switch rec.Message {
	case msgEventFailed, msgWriteKeepsFailing, msgTemporalRefused, msgWebhookRefused:
	default:
		return // every other line of the process costs nothing more
	}
	fields := map[string]string{}
	for _, a := range attrs {
		fields[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.String()
		return true
	})
	switch rec.Message {
	case msgEventFailed, msgWriteKeepsFailing, msgTemporalRefused:
		r.report(rec.Message, sentry.LevelError, fields)
	case msgWebhookRefused:
		if fields["outcome"] == "bad_signature" {
			r.signatureFailed(rec.Time, fields)
		}
	}
}

// signatureFailed counts one signature failure, and reports the minute's
// burst when it reaches BurstThreshold.
func (r *Reporter) signatureFailed(at time.Time, fields map[string]string) {
	r.mu.Lock()
	if at.Sub(r.burstStart) > time.Minute {
		r.burstStart, r.burstCount, r.burstReported = at, 0, false
	}
	r.burstCount++
	burst := r.burstCount >= BurstThreshold && !r.burstReported
	if burst {
		r.burstReported = true
	}
	r.mu.Unlock()
	if burst {
		r.report(fmt.Sprintf("Webhook signatures failing: %d within a minute", BurstThreshold), sentry.LevelError, nil)
	}
}

// report sends one event: the log line's message and its allowed
// attributes as tags, grouped by the message and what kind of event or
// operation it was (not by user), with a link to the workflow run.
func (r *Reporter) report(message string, level sentry.Level, fields map[string]string) {
	ev := sentry.NewEvent()
	ev.Level, ev.Message = level, message
	ev.Tags = map[string]string{"process": r.opts.Process}
	for key, tag := range tagKeys {
		if v := fields[key]; v != "" {
			ev.Tags[tag] = v
		}
	}
	if ev.Tags["clerk_id"] == "" {
		// The run's ID ends in the Clerk ID it is about (user/<clerk_id>).
		if wid := ev.Tags["workflow_id"]; strings.Contains(wid, "user/user_") {
			ev.Tags["clerk_id"] = wid[strings.LastIndex(wid, "/")+1:]
		}
	}
	ev.Fingerprint = []string{message, ev.Tags["event_type"], ev.Tags["operation"], ev.Tags["activity_type"]}
	details := sentry.Context{}
	if e := fields["error"]; e != "" {
		details["error"] = e
	}
	if link := r.workflowLink(ev.Tags["workflow_id"], ev.Tags["run_id"]); link != "" {
		details["workflow"] = link
	}
	if len(details) > 0 {
		ev.Contexts = map[string]sentry.Context{"clerksync": details}
	}
	r.client.CaptureEvent(ev, nil, nil)
}

// workflowLink is the run's page in the Temporal UI, "" without a UI URL
// or a workflow.
func (r *Reporter) workflowLink(workflowID, runID string) string {
	if r.opts.UIURL == "" || workflowID == "" {
		return ""
	}
	link := strings.TrimSuffix(r.opts.UIURL, "/") + "/namespaces/" + url.PathEscape(r.opts.Namespace) + "/workflows/" + url.PathEscape(workflowID)
	if runID != "" {
		link += "/" + url.PathEscape(runID) + "/history"
	}
	return link
}

// Wrap returns logger reporting to Sentry as o says, and the function that
// flushes the reports still being sent (call it before exit); without
// o.DSN, logger itself and a function that does nothing.
func Wrap(logger *slog.Logger, o Options) (*slog.Logger, func(), error) {
	if o.DSN == "" {
		return logger, func() {}, nil
	}
	r, err := New(o)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(r.Handler(logger.Handler())), func() { r.Flush(5 * time.Second) }, nil
}
