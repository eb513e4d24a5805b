package temporalclient

import (
	"testing"

	"go.temporal.io/sdk/temporal"
)

// The commands the worker logs when it cannot register the search
// attributes itself are what an operator pastes: each key with its type,
// in the spelling each tool accepts.
func TestSearchAttributeCommands(t *testing.T) {
	keys := []temporal.SearchAttributeKey{temporal.NewSearchAttributeKeyKeyword("ClerkUserId"), temporal.NewSearchAttributeKeyBool("Flag")}
	cli, cloud := SearchAttributeCommands("prod.a1b2c", keys)
	if want := "temporal operator search-attribute create --namespace prod.a1b2c --name ClerkUserId --type Keyword --name Flag --type Bool"; cli != want {
		t.Errorf("cli:\n got %s\nwant %s", cli, want)
	}
	if want := "tcld namespace search-attributes add --namespace prod.a1b2c --search-attribute ClerkUserId=Keyword --search-attribute Flag=Bool"; cloud != want {
		t.Errorf("cloud:\n got %s\nwant %s", cloud, want)
	}
}
