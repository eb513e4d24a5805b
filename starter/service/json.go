package service

import (
	"encoding/json"
	"net/http"
)

// writeJSON answers status with v as JSON: every endpoint's body, the
// errors included.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client has gone if this fails
}
