package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
)

// setting is one value of a variable a section compares: its label in the
// table and the environment the worker and the starter get for it.
type setting struct {
	label string
	env   []string
}

// settingRound is one phase of signups at a setting.
type settingRound struct {
	setting string
	phase   phase
}

// settingRounds runs two rounds of signups, the settings in turn (the
// second round in the first's reverse order), each phase on a dev server
// of its own, as the throughput section's: a worker and a starter given
// env and the setting's environment, on a new database, once PostgreSQL is
// quiet (db). name prefixes the phases' users.
func settingRounds(b *testing.B, bin string, env []string, db *pgx.Conn, name string, created time.Time, settings ...setting) []settingRound {
	var rounds []settingRound
	for round := range 2 {
		for _, s := range inTurn(round, settings...) {
			onDevServer(b, db, func(server process, address string, tc client.Client) {
				prefix := fmt.Sprintf("%s_%s_%d_", name, s.label, round)
				ph := freshSignups(b, tc, bin, append(slices.Clone(env), s.env...), address, server.pid, prefix, created)
				rounds = append(rounds, settingRound{setting: s.label, phase: ph})
			})
		}
	}
	return rounds
}

// settingsBench runs the sections that compare a setting of the worker and
// the starter, each with settingRounds.
func (r *report) settingsBench(b *testing.B, bin string, env []string, db *pgx.Conn) {
	created := time.Now().Truncate(time.Millisecond)
	r.pollerRounds = settingRounds(b, bin, env, db, "pollers", created,
		setting{"2", []string{"WORKER_WORKFLOW_POLLERS=2"}}, setting{"16", []string{"WORKER_WORKFLOW_POLLERS=16"}})
	r.encryptionRounds = settingRounds(b, bin, env, db, "encrypted", created,
		setting{"encrypted", []string{"PAYLOAD_KEYS=" + benchPayloadKeys}}, setting{"plaintext", nil})
	r.compressionRounds = settingRounds(b, bin, env, db, "compression", created,
		setting{config.GRPCCompressionGzip, []string{"TEMPORAL_GRPC_COMPRESSION=" + config.GRPCCompressionGzip}},
		setting{config.GRPCCompressionNone, []string{"TEMPORAL_GRPC_COMPRESSION=" + config.GRPCCompressionNone}})
}

// BenchmarkSettings runs the sections that compare a setting (pollers,
// encryption, compression) alone, with the report's users, and prints
// them (make bench writes them with the rest).
func BenchmarkSettings(b *testing.B) {
	benchAlone(b, func(r *report, bin string, env []string, db *pgx.Conn) { r.settingsBench(b, bin, env, db) },
		report.settingSections)
}
