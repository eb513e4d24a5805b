package syncworker

import (
	"slices"
	"testing"

	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/ensure/contract"
)

// names records the workflow types registered on it.
type names []string

func (n *names) RegisterWorkflow(any) {}

func (n *names) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	*n = append(*n, o.Name)
}

// Every entity's events reach a workflow the worker runs under the type
// the starters start it by. (The store's side: store's
// TestEveryEntityIsWired.)
func TestEveryEntityIsWired(t *testing.T) {
	var registered names
	RegisterWorkflows(&registered)
	for _, e := range contract.Entities {
		if !slices.Contains(registered, e.WorkflowType()) {
			t.Errorf("%s: its workflow type %s is not registered (registered by name: %v)", e, e.WorkflowType(), registered)
		}
	}
}
