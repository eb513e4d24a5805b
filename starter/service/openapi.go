package service

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/clerksync/clerksync/internal/store"
)

// openAPIYAML is the starter's OpenAPI document, the contract its tests
// hold every request and answer to. It describes clerksync's own users
// table; with a mapping, GET /openapi.json describes the product's.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIDocument returns the checked-in document as JSON.
func OpenAPIDocument() ([]byte, error) {
	doc, err := parseOpenAPI()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

func parseOpenAPI() (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return doc, nil
}

// openAPIHandler serves GET /openapi.json: the document, with the User
// schema built from the mapped table's columns when a mapping is set (read
// once, when PostgreSQL first answers).
type openAPIHandler struct {
	store  *store.Store
	logger *slog.Logger

	mu  sync.Mutex
	doc []byte
}

func (h *openAPIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	doc, err := h.document(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// document builds the document once. With a mapping whose table cannot be
// read (PostgreSQL away, or a mapping that does not fit: ensure is not
// ready either), User is any row with clerk_id, and the next request tries
// again.
func (h *openAPIHandler) document(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.doc != nil {
		return h.doc, nil
	}
	doc, err := parseOpenAPI()
	if err != nil {
		return nil, err
	}
	final := true
	if h.store.Mapped() {
		schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
		cols, err := h.store.UserColumns(ctx)
		if err != nil {
			h.logger.Warn("The OpenAPI document's User is any row until the users table's columns can be read", "error", err)
			schemas["User"] = anyUserSchema
			final = false
		} else {
			schemas["User"] = userSchema(cols)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if final {
		h.doc = b
	}
	return b, nil
}

// anyUserSchema is a mapped table's row while its columns are unknown.
var anyUserSchema = map[string]any{
	"description": "A row of the product's users table (CLERKSYNC_MAPPING), plus clerk_id; its columns could not be read yet.",
	"type":        "object", "required": []string{"clerk_id"},
	"properties": map[string]any{"clerk_id": map[string]any{"type": "string", "pattern": "^user_"}},
}

// userSchema is the JSON Schema of a mapped table's row as ensure answers
// it: each column it holds (store.UserColumns) as to_jsonb writes its type.
func userSchema(cols []store.RowColumn) map[string]any {
	props := map[string]any{}
	var required []string
	for _, c := range cols {
		s := columnSchema(c.DataType)
		if t, ok := s["type"].(string); ok && c.Nullable {
			s["type"] = []string{t, "null"}
		}
		s["description"] = "column " + c.Name + " (" + c.DataType + ")"
		props[c.Name] = s
		required = append(required, c.Name)
	}
	props["clerk_id"] = map[string]any{"type": "string", "pattern": "^user_", "description": "The Clerk user ID."}
	slices.Sort(required)
	return map[string]any{
		"description": "A row of the product's users table (CLERKSYNC_MAPPING): its key, its Clerk ID and the columns the mapping exposes, by their names, as PostgreSQL's to_jsonb writes them, plus clerk_id.",
		"type":        "object", "required": required, "properties": props,
	}
}

// columnSchema is the JSON Schema of a column's values in to_jsonb's
// output. A type it does not know takes any value.
func columnSchema(dataType string) map[string]any {
	switch dataType {
	case "text", "character varying", "character", "citext", "name":
		return map[string]any{"type": "string"}
	case "uuid":
		return map[string]any{"type": "string", "format": "uuid"}
	case "timestamp with time zone":
		return map[string]any{"type": "string", "format": "date-time"}
	case "timestamp without time zone":
		// No offset, so not RFC 3339's date-time: 2026-12-01T22:37:48.123.
		return map[string]any{"type": "string"}
	case "date":
		return map[string]any{"type": "string", "format": "date"}
	case "smallint", "integer", "bigint":
		return map[string]any{"type": "integer"}
	case "numeric", "real", "double precision":
		return map[string]any{"type": "number"}
	case "boolean":
		return map[string]any{"type": "boolean"}
	case "ARRAY":
		return map[string]any{"type": "array"}
	}
	return map[string]any{}
}
