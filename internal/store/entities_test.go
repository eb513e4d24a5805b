package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clerksync/clerksync/ensure/contract"
)

// Every entity of the contract has its tombstones in the store, created by
// a bookkeeping migration, and the entities with a workflow of their own
// have their histories erased: an entity added to the contract and not
// wired here fails. (The worker's side: syncworker's
// TestEveryEntityIsWired.)
func TestEveryEntityIsWired(t *testing.T) {
	migrations, err := filepath.Glob("migrations/bookkeeping/*.sql")
	if err != nil || len(migrations) == 0 {
		t.Fatalf("no bookkeeping migrations found: %v", err)
	}
	var created strings.Builder
	for _, m := range migrations {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		created.Write(b)
	}
	for _, name := range contract.Entities {
		t.Run(string(name), func(t *testing.T) {
			var e *entity
			for i := range entities {
				if entities[i].name == name {
					e = &entities[i]
				}
			}
			if e == nil {
				t.Fatalf("no tombstones for %s in store.entities", name)
			}
			table := "{{.schema}}." + e.tombstones
			if !strings.Contains(created.String(), "create table "+table+" (") {
				t.Errorf("%s: no migration creates its tombstones, %s", name, table)
			}
			_, err := erasureEntity(name)
			if ownWorkflow := name.Workflow() == name; ownWorkflow != (err == nil) {
				t.Errorf("%s: erasure: %v; want one exactly when the entity has a workflow of its own (%v)", name, err, ownWorkflow)
			}
		})
	}
}
