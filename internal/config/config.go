// Package config reads clerksync's settings from the environment. Every
// variable, its default and its meaning are listed once, in Vars, which both
// the binaries' --help and docs/configuration.md's table come from.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/telemetry"
)

// Var documents one environment variable.
type Var struct {
	Name    string
	Default string
	Usage   string
	// ReadBy names the binaries that read it: Worker, Starter or Both.
	ReadBy string
}

// Binaries, as Var.ReadBy names them.
const (
	Worker  = "worker"
	Starter = "starter"
	Both    = "worker, starter"
)

// Defaults of the variables: the one place each is read from. Packages that
// need one refer to it here (the Temporal client, the worker); the two the
// ensure library needs are its own (it links no configuration), and Vars,
// --help and docs/configuration.md's table show them all.
const (
	DefaultDatabaseURL         = "postgres://127.0.0.1:5432/clerksync"
	DefaultTemporalAddress     = "127.0.0.1:7233"
	DefaultTaskQueue           = contract.DefaultTaskQueue
	DefaultClerkAPIURL         = "https://api.clerk.com/v1"
	DefaultHTTPAddr            = ":8080"
	DefaultWorkerHTTPAddr      = ":8081"
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "json"
	DefaultWebhookMaxBytes     = 1 << 20
	DefaultEnsureTimeout       = ensure.DefaultTimeout
	DefaultTrialPeriod         = 14 * 24 * time.Hour
	DefaultTrialExpiryInterval = time.Minute
	DefaultErasureInterval     = time.Minute
	DefaultWorkflowPollers     = 16
	// DefaultClerkAPIRPS stays under a development instance's limit of 100
	// requests per 10 s; a production instance allows 1,000.
	DefaultClerkAPIRPS = 9
	// DefaultBackfillWindows keeps ten requests in flight (at 200 ms an
	// answer, 50 a second: half a production instance's budget) with two
	// to spare.
	DefaultBackfillWindows = 12
	// DefaultTemporalGRPCCompression leaves clerksync's requests to
	// Temporal uncompressed. The SDK gzips every request and the server
	// answers in kind: for the few kilobytes a sync sends, to a Temporal on
	// the same network, that is CPU spent for nothing (make bench measures
	// it: docs/benchmarks.md).
	DefaultTemporalGRPCCompression = GRPCCompressionNone
	// MinEnsureAPIKeyLength is the shortest ENSURE_API_KEYS secret taken:
	// 128 bits as hex, so no key is short enough to guess.
	MinEnsureAPIKeyLength = 32
)

// Vars lists every variable clerksync reads. TEMPORAL_* are read by the
// Temporal SDK's envconfig (internal/temporalclient); they are listed here so
// --help shows them too.
var Vars = []Var{
	{"DATABASE_URL", DefaultDatabaseURL, fmt.Sprintf("PostgreSQL connection URL (pgx syntax); pool_max_conns defaults to %d, connect_timeout to %d (seconds)",
		store.DefaultMaxConns, int(store.DefaultConnectTimeout.Seconds())), Both},
	{"CLERKSYNC_SCHEMA", store.DefaultSchema, "PostgreSQL schema of clerksync's bookkeeping (tombstones, each row's version, trial grants, backfill state, migration versions), created by the worker; ensure clients need the same", Both},
	{"CLERKSYNC_MAPPING", "", "path of the YAML file that maps users and trials onto the product's own tables (docs/adopting.md); empty: clerksync creates and owns users, subscriptions, organizations and organization_memberships", Both},
	{"TEMPORAL_ADDRESS", DefaultTemporalAddress, "Temporal frontend host:port", Both},
	{"TEMPORAL_NAMESPACE", client.DefaultNamespace, "Temporal namespace", Both},
	{"TEMPORAL_API_KEY", "", "Temporal Cloud API key (implies TLS)", Both},
	{"TEMPORAL_TLS_*", "", "TLS settings of Temporal's standard environment (TEMPORAL_TLS_CLIENT_CERT_PATH, ...)", Both},
	{"TEMPORAL_GRPC_COMPRESSION", DefaultTemporalGRPCCompression, "compression of the requests to Temporal and of its answers: none, or gzip (the Temporal SDK's default) where the bytes cost more than the CPU, as to a Temporal Cloud namespace in another region", Both},
	{"TEMPORAL_TASK_QUEUE", DefaultTaskQueue, "task queue the worker polls and the starter starts workflows on", Both},
	{"CLERK_WEBHOOK_SECRET", "", "Svix signing secret(s) of the Clerk webhook endpoint, whsec_...; several, space-separated, during rotation (starter serve, send)", Starter},
	{"CLERK_SECRET_KEY", "", "Clerk Backend API secret key, sk_...: the worker fetches profiles with it, the starter verifies session JWTs (ensure)", Both},
	{"CLERK_API_URL", DefaultClerkAPIURL, "Clerk Backend API base URL", Both},
	{"CLERK_API_RPS", strconv.Itoa(DefaultClerkAPIRPS), "Clerk Backend API requests per second the worker makes at most (ensure's profile fetch, backfill, reconcile); 0 lifts the limit; a production instance allows 100", Worker},
	{"BACKFILL_WINDOWS", strconv.Itoa(DefaultBackfillWindows), "how many created_at windows of Clerk's user listing a backfill or reconcile reads side by side, all under CLERK_API_RPS, so a run is bound by the rate limit rather than by one request's latency (a listing too small for three pages a window is read in fewer); 1 reads the listing in one", Worker},
	{"CLERK_AUTHORIZED_PARTIES", "", "comma-separated origins accepted in a session JWT's azp claim (ensure); empty accepts any", Starter},
	{"ENSURE_API_KEYS", "", "comma-separated secrets (each at least 32 characters: openssl rand -hex 32) the product's backend sends in ensure's Clerksync-Key header, several during rotation; empty: a session token alone is enough, as in v0.1.0 (warned at start: a signed-in user could call ensure from the browser)", Starter},
	{"HTTP_ADDR", DefaultHTTPAddr, "address the starter's HTTP service listens on", Starter},
	{"WORKER_HTTP_ADDR", DefaultWorkerHTTPAddr, "address the worker serves /metrics, /healthz and /readyz on", Worker},
	{"LOG_LEVEL", DefaultLogLevel, "least severe log lines written: debug, info, warn or error", Both},
	{"LOG_FORMAT", DefaultLogFormat, "log line format: json (one object per line) or text (for a terminal)", Both},
	{"PAYLOAD_KEYS", "", "keys that encrypt what clerksync stores in Temporal: id:base64key pairs (32-byte AES-256 keys), comma-separated; the first encrypts, all decrypt (worker, starter, ensure clients alike)", Both},
	{"CODEC_AUTH_TOKEN", "", "bearer token the starter's codec endpoint /codec accepts; with CODEC_OIDC_ISSUER also empty and PAYLOAD_KEYS set, the starter serves only on a loopback HTTP_ADDR", Starter},
	{"CODEC_OIDC_ISSUER", "", "OpenID Connect issuer whose access tokens /codec also accepts: a Temporal UI behind SSO forwarding its user's token", Starter},
	{"CODEC_OIDC_AUDIENCE", "", "aud those access tokens must carry; required with CODEC_OIDC_ISSUER", Starter},
	{"CODEC_UNAUTHENTICATED", "false", "true serves /codec without authentication on a HTTP_ADDR that is not loopback: only where the network already keeps others out (compose publishes the starter on 127.0.0.1 alone)", Starter},
	{"CODEC_CORS_ORIGINS", "", "comma-separated browser origins (a Temporal UI's) allowed to call /codec", Starter},
	{"WEBHOOK_MAX_BYTES", strconv.Itoa(DefaultWebhookMaxBytes), "largest webhook body accepted; larger ones get 413", Starter},
	{"ENSURE_TIMEOUT", shortDuration(DefaultEnsureTimeout), "bounds a whole ensure call: the lookup, the signal and the wait for the row", Starter},
	{"TRIAL_PERIOD", shortDuration(DefaultTrialPeriod), "length of a new user's trial subscription, from Clerk's created_at (read by the worker)", Worker},
	{"TRIAL_EXPIRY_INTERVAL", shortDuration(DefaultTrialExpiryInterval), "how often the trial-expiry Schedule expires the trials that have ended (set by the worker at start-up)", Worker},
	{"WORKER_WORKFLOW_POLLERS", strconv.Itoa(DefaultWorkflowPollers), "workflow task polls the worker runs at once (the SDK's default is 2)", Worker},
	{"ERASE_DELETED_HISTORIES", "true", "once a user's (or organization's) deletion has completed, delete every run of its workflow from Temporal, so no email or name of a deleted user stays there (docs/operating.md#erasure-of-deleted-users); false keeps them for audit", Worker},
	{"ERASURE_INTERVAL", shortDuration(DefaultErasureInterval), "how often the erasure Schedule deletes the closed runs of deleted users and organizations (set by the worker at start-up, with ERASE_DELETED_HISTORIES)", Worker},
	{"SENTRY_DSN", "", "Sentry project DSN: events that failed for good, writes that keep failing, Temporal refusing webhooks and bursts of signature failures are reported there, with Clerk IDs, event types and Svix message IDs, never an email, a name or a secret; unset sends nothing", Both},
	{"SENTRY_ENVIRONMENT", "", "the environment Sentry files reports under (production, staging); Sentry's default when unset", Both},
	{"TEMPORAL_UI_URL", "", "the Temporal UI's address (https://temporal.example.com, or Temporal Cloud's https://cloud.temporal.io): a Sentry report then links its workflow run", Both},
}

// Config is the parsed environment.
type Config struct {
	DatabaseURL string
	// Schema is the bookkeeping schema (CLERKSYNC_SCHEMA).
	Schema string
	// Mapping maps users and trials onto the product's tables, read from
	// MappingFile (CLERKSYNC_MAPPING); nil for clerksync's own tables.
	Mapping        *mapping.Mapping
	MappingFile    string
	TaskQueue      string
	WebhookSecret  string
	ClerkSecretKey string
	ClerkAPIURL    string
	// AuthorizedParties are the accepted azp origins; empty accepts any.
	AuthorizedParties []string
	// EnsureAPIKeys are the secrets of the product's backend, one of which
	// an ensure must carry; empty requires none (ENSURE_API_KEYS).
	EnsureAPIKeys []string
	HTTPAddr      string
	// WorkerHTTPAddr is where the worker serves metrics and health.
	WorkerHTTPAddr string
	// PayloadKeys encrypt Temporal payloads; nil when PAYLOAD_KEYS is unset.
	PayloadKeys *payloadcodec.Keys
	// TemporalGRPCCompression compresses the Temporal client's requests
	// (TEMPORAL_GRPC_COMPRESSION).
	TemporalGRPCCompression client.GrpcCompression
	// CodecAuthToken guards /codec, beside the access tokens of
	// CodecOIDCIssuer (for CodecOIDCAudience); CodecCORSOrigins may call it.
	CodecAuthToken    string
	CodecOIDCIssuer   string
	CodecOIDCAudience string
	CodecCORSOrigins  []string
	// CodecUnauthenticated allows /codec without authentication on an
	// address other than loopback.
	CodecUnauthenticated bool
	WebhookMaxBytes      int64
	EnsureTimeout        time.Duration
	TrialPeriod          time.Duration
	// TrialExpiryInterval is how often the trial-expiry Schedule runs.
	TrialExpiryInterval time.Duration
	// WorkflowPollers is the worker's concurrent workflow task polls.
	WorkflowPollers int
	// ClerkAPIRPS paces the worker's Clerk API requests; 0 lifts the limit.
	ClerkAPIRPS float64
	// BackfillWindows is how many windows of Clerk's user listing a run
	// reads side by side (BACKFILL_WINDOWS).
	BackfillWindows int
	// EraseDeletedHistories deletes a deleted user's runs from Temporal
	// (ERASE_DELETED_HISTORIES).
	EraseDeletedHistories bool
	// ErasureInterval is how often the erasure Schedule runs.
	ErasureInterval time.Duration
	// SentryDSN, SentryEnvironment and TemporalUIURL configure error
	// reports (internal/errreport); no DSN sends none.
	SentryDSN, SentryEnvironment, TemporalUIURL string
}

// Load reads the configuration from the process environment.
func Load() (Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads the configuration through lookup, falling back to each
// variable's default. Errors name the variable and the value it holds.
func LoadFrom(lookup func(string) (string, bool)) (Config, error) {
	get := getter(lookup)
	var errs []string
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s=%q: want a positive Go duration such as 30s or 1m", name, get(name)))
		}
		return d
	}
	c := Config{
		DatabaseURL:         get("DATABASE_URL"),
		Schema:              get("CLERKSYNC_SCHEMA"),
		TaskQueue:           get("TEMPORAL_TASK_QUEUE"),
		WebhookSecret:       get("CLERK_WEBHOOK_SECRET"),
		ClerkSecretKey:      get("CLERK_SECRET_KEY"),
		ClerkAPIURL:         get("CLERK_API_URL"),
		HTTPAddr:            get("HTTP_ADDR"),
		WorkerHTTPAddr:      get("WORKER_HTTP_ADDR"),
		CodecAuthToken:      get("CODEC_AUTH_TOKEN"),
		CodecOIDCIssuer:     get("CODEC_OIDC_ISSUER"),
		CodecOIDCAudience:   get("CODEC_OIDC_AUDIENCE"),
		CodecCORSOrigins:    list(get("CODEC_CORS_ORIGINS")),
		AuthorizedParties:   list(get("CLERK_AUTHORIZED_PARTIES")),
		EnsureAPIKeys:       list(get("ENSURE_API_KEYS")),
		EnsureTimeout:       duration("ENSURE_TIMEOUT"),
		TrialPeriod:         duration("TRIAL_PERIOD"),
		TrialExpiryInterval: duration("TRIAL_EXPIRY_INTERVAL"),
		ErasureInterval:     duration("ERASURE_INTERVAL"),
		SentryDSN:           get("SENTRY_DSN"),
		SentryEnvironment:   get("SENTRY_ENVIRONMENT"),
		TemporalUIURL:       get("TEMPORAL_UI_URL"),
	}
	n, err := strconv.ParseInt(get("WEBHOOK_MAX_BYTES"), 10, 64)
	if err != nil || n <= 0 {
		errs = append(errs, fmt.Sprintf("WEBHOOK_MAX_BYTES=%q: want a positive number of bytes", get("WEBHOOK_MAX_BYTES")))
	}
	c.WebhookMaxBytes = n
	if err := store.ValidateSchema(c.Schema); err != nil {
		errs = append(errs, "CLERKSYNC_SCHEMA: "+err.Error())
	}
	if c.MappingFile = get("CLERKSYNC_MAPPING"); c.MappingFile != "" {
		if c.Mapping, err = mapping.Load(c.MappingFile); err != nil {
			errs = append(errs, err.Error())
		}
	}
	pollers, err := strconv.Atoi(get("WORKER_WORKFLOW_POLLERS"))
	if err != nil || pollers <= 0 {
		errs = append(errs, fmt.Sprintf("WORKER_WORKFLOW_POLLERS=%q: want a positive number", get("WORKER_WORKFLOW_POLLERS")))
	}
	c.WorkflowPollers = pollers
	rps, err := strconv.ParseFloat(get("CLERK_API_RPS"), 64)
	if err != nil || rps < 0 {
		errs = append(errs, fmt.Sprintf("CLERK_API_RPS=%q: want a number of requests per second, 0 for no limit", get("CLERK_API_RPS")))
	}
	c.ClerkAPIRPS = rps
	if c.BackfillWindows, err = strconv.Atoi(get("BACKFILL_WINDOWS")); err != nil || c.BackfillWindows < 1 || c.BackfillWindows > 100 {
		errs = append(errs, fmt.Sprintf("BACKFILL_WINDOWS=%q: want a number of windows from 1 to 100", get("BACKFILL_WINDOWS")))
	}
	if c.EraseDeletedHistories, err = strconv.ParseBool(get("ERASE_DELETED_HISTORIES")); err != nil {
		errs = append(errs, fmt.Sprintf("ERASE_DELETED_HISTORIES=%q: want true or false", get("ERASE_DELETED_HISTORIES")))
	}
	if c.CodecUnauthenticated, err = strconv.ParseBool(get("CODEC_UNAUTHENTICATED")); err != nil {
		errs = append(errs, fmt.Sprintf("CODEC_UNAUTHENTICATED=%q: want true or false", get("CODEC_UNAUTHENTICATED")))
	}
	if c.CodecOIDCIssuer != "" && c.CodecOIDCAudience == "" {
		errs = append(errs, "CODEC_OIDC_AUDIENCE is required with CODEC_OIDC_ISSUER: without it, an access token the issuer minted for any "+
			"of its applications would decrypt payloads; set the audience (client ID) of the Temporal UI's tokens")
	}
	for i, k := range c.EnsureAPIKeys {
		if len(k) < MinEnsureAPIKeyLength {
			errs = append(errs, fmt.Sprintf("ENSURE_API_KEYS: key %d has %d characters: want at least %d (openssl rand -hex 32 makes one)", i+1, len(k), MinEnsureAPIKeyLength))
		}
	}
	if c.TemporalGRPCCompression, err = GRPCCompression(get("TEMPORAL_GRPC_COMPRESSION")); err != nil {
		errs = append(errs, err.Error())
	}
	if c.PayloadKeys, err = payloadcodec.ParseKeys(get("PAYLOAD_KEYS")); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := newLogger(io.Discard, "", get); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// The values of TEMPORAL_GRPC_COMPRESSION.
const (
	GRPCCompressionNone = "none"
	GRPCCompressionGzip = "gzip"
)

// GRPCCompression is the Temporal SDK's setting for a
// TEMPORAL_GRPC_COMPRESSION value.
func GRPCCompression(name string) (client.GrpcCompression, error) {
	switch name {
	case GRPCCompressionNone:
		return &client.GrpcCompressionNone{}, nil
	case GRPCCompressionGzip:
		return &client.GrpcCompressionGzip{}, nil
	}
	return nil, fmt.Errorf("TEMPORAL_GRPC_COMPRESSION=%q: want %s or %s", name, GRPCCompressionNone, GRPCCompressionGzip)
}

// Layout says where clerksync's tables are, for store.Open.
func (c Config) Layout() store.Layout { return store.Layout{Schema: c.Schema, Mapping: c.Mapping} }

// ClerkClient returns clerk-sdk-go's configuration for the Backend API at
// CLERK_API_URL with CLERK_SECRET_KEY, or nil when no key is set.
func (c Config) ClerkClient() *clerk.ClientConfig {
	if c.ClerkSecretKey == "" {
		return nil
	}
	url, key := c.ClerkAPIURL, c.ClerkSecretKey
	return &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
		URL: &url, Key: &key,
		// Bounded, so a hung Clerk API fails the attempt and Temporal retries.
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: clerkErrorShape{http.DefaultTransport}},
	}}
}

// shortDuration writes d as a person would: 336h, 1m, 1h30m, 5s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// PrintVars writes the variables binary (Worker or Starter) reads as an
// aligned table, for its --help.
func PrintVars(w io.Writer, binary string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Vars {
		if v.ReadBy != Both && v.ReadBy != binary {
			continue
		}
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Usage)
	}
	tw.Flush()
}

// NewLogger returns the logger of the process named process, writing to w
// as LOG_FORMAT and LOG_LEVEL say. It reads only those two, so a binary has
// its logger before the rest of its configuration is checked.
func NewLogger(w io.Writer, process string) (*slog.Logger, error) {
	return newLogger(w, process, getter(os.LookupEnv))
}

func newLogger(w io.Writer, process string, get func(string) string) (*slog.Logger, error) {
	level, err := telemetry.ParseLevel(get("LOG_LEVEL"))
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL=%q: %w", get("LOG_LEVEL"), err)
	}
	logger, err := telemetry.NewLogger(w, get("LOG_FORMAT"), level, process)
	if err != nil {
		return nil, fmt.Errorf("LOG_FORMAT=%q: want %s or %s", get("LOG_FORMAT"), telemetry.FormatJSON, telemetry.FormatText)
	}
	return logger, nil
}

// getter reads a variable through lookup, falling back to its default when
// it is unset or blank.
func getter(lookup func(string) (string, bool)) func(string) string {
	return func(name string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return defaultOf(name)
	}
}

func defaultOf(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// ErrorReports is what errreport needs of c to report process's errors to
// Sentry: SENTRY_DSN and SENTRY_ENVIRONMENT, and the Temporal UI's address
// and namespace for the links to workflow runs.
func (c Config) ErrorReports(process string) errreport.Options {
	namespace := os.Getenv("TEMPORAL_NAMESPACE")
	if namespace == "" {
		namespace = "default"
	}
	return errreport.Options{DSN: c.SentryDSN, Environment: c.SentryEnvironment, Process: process, Release: buildinfo.Version,
		UIURL: c.TemporalUIURL, Namespace: namespace}
}
