package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func isNamespaceNotFound(err error) bool {
	var nf *serviceerror.NamespaceNotFound
	return errors.As(err, &nf)
}

// A namespace without clerksync's search attributes is not ready, with a
// reason that says what to do; once they are registered (as the worker
// does), it is.
func TestReadiness_SearchAttributesUntilTheNamespaceTakesThem(t *testing.T) {
	testenv.Temporal(t)
	ctx := context.Background()
	ns := fmt.Sprintf("readyz-%d", time.Now().UnixNano())
	nc, err := client.NewNamespaceClient(client.Options{HostPort: testenv.TemporalAddress(t)})
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}))
	tc, err := client.Dial(client.Options{HostPort: testenv.TemporalAddress(t), Namespace: ns})
	require.NoError(t, err)
	defer tc.Close()
	rd := &readiness{temporal: tc, namespace: ns}
	require.Eventually(t, func() bool { // the new namespace reaches the frontend's cache first
		err := rd.searchAttributes(ctx)
		return err != nil && !isNamespaceNotFound(err)
	}, 30*time.Second, 200*time.Millisecond)
	err = rd.searchAttributes(ctx)
	require.ErrorContains(t, err, "namespace "+ns+" does not take clerksync's search attributes yet")
	require.ErrorContains(t, err, "docs/temporal.md")

	attrs := map[string]enums.IndexedValueType{}
	for _, k := range contract.SearchAttributeKeys {
		attrs[k.GetName()] = k.GetValueType()
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: attrs})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rd.searchAttributes(ctx) == nil }, 30*time.Second, 200*time.Millisecond)
}
