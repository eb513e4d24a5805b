package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// setting is one value of a variable a section compares: its label in the
// table, the environment the worker and the starter get for it, and the
// tables they write (clerksync's own when nil).
type setting struct {
	label  string
	env    []string
	tables *signupTables
}

// signupTables are the tables a phase of signups writes into.
type signupTables struct {
	// database creates a new database holding them (or none, for the
	// worker's migrations to create) and returns its URL.
	database func(b *testing.B) string
	// trials counts the trials written, which the phase waits for.
	trials string
	// env is what the worker and the starter need to write them.
	env []string
}

// ownTables are clerksync's own tables, created by the worker's migrations.
var ownTables = signupTables{
	database: func(b *testing.B) string { return testenv.Database(b) },
	trials:   `select count(*) from subscriptions`,
}

// prismaTables are the Prisma example's (docs/examples/prisma), mapped by
// its clerksync.yaml.
var prismaTables = signupTables{
	database: func(b *testing.B) string { return testenv.Prisma.ProductDatabase(b, "UTC") },
	trials:   `select count(*) from "Subscription"`,
	env:      []string{"CLERKSYNC_MAPPING=" + testenv.Prisma.MappingFile()},
}

// settingRound is one phase of signups at a setting.
type settingRound struct {
	setting string
	phase   phase
}

// settingRounds runs two rounds of signups, the settings in turn (the
// second round in the first's reverse order), each phase on a dev server
// of its own, as the throughput section's: a worker and a starter given
// env and the setting's environment, on a new database holding the
// setting's tables, once PostgreSQL is quiet (db). name prefixes the
// phases' users.
func settingRounds(b *testing.B, bin string, env []string, db *pgx.Conn, name string, created time.Time, settings ...setting) []settingRound {
	var rounds []settingRound
	for round := range 2 {
		for _, s := range inTurn(round, settings...) {
			onDevServer(b, db, func(server process, address string, tc client.Client) {
				// The setting's place, not its label, names its users: a
				// label is prose.
				prefix := fmt.Sprintf("%s%d_%d_", name, slices.IndexFunc(settings, func(o setting) bool { return o.label == s.label }), round)
				tables := ownTables
				if s.tables != nil {
					tables = *s.tables
				}
				ph := freshSignups(b, tc, bin, slices.Concat(env, s.env), tables, address, server.pid, prefix, created)
				rounds = append(rounds, settingRound{setting: s.label, phase: ph})
			})
		}
	}
	return rounds
}

// settingsBench runs the sections that compare a setting of the worker and
// the starter, each with settingRounds: the pollers, encryption,
// compression, and the tables written (clerksync's own, or the Prisma
// example's, mapped).
func (r *report) settingsBench(b *testing.B, bin string, env []string, db *pgx.Conn) {
	created := time.Now().Truncate(time.Millisecond)
	r.pollerRounds = settingRounds(b, bin, env, db, "pollers", created,
		setting{label: "2", env: []string{"WORKER_WORKFLOW_POLLERS=2"}},
		setting{label: "16", env: []string{"WORKER_WORKFLOW_POLLERS=16"}})
	r.encryptionRounds = settingRounds(b, bin, env, db, "encrypted", created,
		setting{label: "encrypted", env: []string{"PAYLOAD_KEYS=" + benchPayloadKeys}},
		setting{label: "plaintext"})
	r.compressionRounds = settingRounds(b, bin, env, db, "compression", created,
		setting{label: config.GRPCCompressionGzip, env: []string{"TEMPORAL_GRPC_COMPRESSION=" + config.GRPCCompressionGzip}},
		setting{label: config.GRPCCompressionNone, env: []string{"TEMPORAL_GRPC_COMPRESSION=" + config.GRPCCompressionNone}})
	r.mappingRounds = settingRounds(b, bin, env, db, "mapping", created,
		setting{label: ownTablesLabel},
		setting{label: mappedTablesLabel, tables: &prismaTables})
}

// The mapping section's settings, as its table names them.
const (
	ownTablesLabel    = "clerksync's own"
	mappedTablesLabel = "Prisma, mapped"
)

// BenchmarkSettings runs the sections that compare a setting (pollers,
// encryption, compression, mapping) alone, with the report's users, and prints
// them (make bench writes them with the rest).
func BenchmarkSettings(b *testing.B) {
	benchAlone(b, func(r *report, bin string, env []string, db *pgx.Conn) { r.settingsBench(b, bin, env, db) },
		report.settingSections)
}
