package clerkfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// listing is a list request's paging, as Clerk's Backend API document
// describes it: limit (1 to 500, default 10), offset (0 or more), order_by
// (a field with + or - before it, + when there is none, -created_at when
// it is left out) and, for users, the starting_after cursor.
type listing struct {
	limit, offset int
	field         string // created_at or updated_at: the fake orders by these only
	descending    bool
	startingAfter string
}

// errUnprocessable is a list request the document refuses (422).
type errUnprocessable string

func (e errUnprocessable) Error() string { return string(e) }

// parseListing reads a list request's paging, or says why Clerk would
// answer 422.
func parseListing(q url.Values, cursor bool) (listing, error) {
	l := listing{limit: 10, field: "created_at", descending: true}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return l, errUnprocessable("limit must be between 1 and 500")
		}
		l.limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return l, errUnprocessable("offset must be 0 or more")
		}
		l.offset = n
	}
	if v := q.Get("order_by"); v != "" {
		l.descending = strings.HasPrefix(v, "-")
		l.field = strings.TrimLeft(v, "+-")
	}
	if cursor {
		l.startingAfter = q.Get("starting_after")
	}
	switch {
	case l.startingAfter != "" && l.field != "created_at":
		return l, errUnprocessable("starting_after requires ordering by created_at")
	case l.startingAfter != "" && l.offset != 0:
		return l, errUnprocessable("starting_after cannot be combined with a non-zero offset")
	case l.field != "created_at" && l.field != "updated_at":
		// Clerk orders by more fields; the fake does not, and says so
		// rather than answer in an order the caller did not ask for.
		return l, errUnprocessable(fmt.Sprintf("order_by %q: clerkfake orders by created_at or updated_at only", l.field))
	}
	return l, nil
}

// pageOf orders all (given oldest first by created_at, then ID) as l asks,
// and cuts l's page from it; key gives an element's ID and its updated_at
// in Unix milliseconds. A starting_after that names no element is refused.
func pageOf[T any](l listing, all []T, key func(T) (string, int64)) ([]T, error) {
	if l.field == "updated_at" {
		all = slices.Clone(all)
		slices.SortStableFunc(all, func(a, b T) int {
			_, ua := key(a)
			_, ub := key(b)
			return cmp.Compare(ua, ub)
		})
	}
	if l.descending {
		if l.startingAfter == "" {
			// The page only, reversed: the newest of a million users is
			// asked for, and copying them all for it made it slow.
			end := max(0, len(all)-l.offset)
			page := slices.Clone(all[max(0, end-l.limit):end])
			slices.Reverse(page)
			return page, nil
		}
		all = slices.Clone(all)
		slices.Reverse(all)
	}
	if l.startingAfter != "" {
		i := slices.IndexFunc(all, func(x T) bool { id, _ := key(x); return id == l.startingAfter })
		if i < 0 {
			return nil, errUnprocessable("starting_after: no user " + l.startingAfter)
		}
		all = all[i+1:]
	}
	all = all[min(l.offset, len(all)):]
	return all[:min(l.limit, len(all))], nil
}

// writeUnprocessable answers 422 with Clerk's error body.
func writeUnprocessable(w http.ResponseWriter, err error) {
	body := fmt.Appendf(nil, `{"errors":[{"message":%q,"long_message":%q,"code":"form_param_value_invalid"}]}`, err.Error(), err.Error())
	writeBody(w, http.StatusUnprocessableEntity, body)
}

// list answers GET /v1/users as Clerk does: a bare JSON array.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	q := r.URL.Query()
	l, err := parseListing(q, true)
	if err != nil {
		writeUnprocessable(w, err)
		return
	}
	users, err := pageOf(l, s.filtered(q), func(u User) (string, int64) { return u.ID, u.UpdatedAt.UnixMilli() })
	if err != nil {
		writeUnprocessable(w, err)
		return
	}
	// The cached objects are joined as they are, into a reused buffer:
	// re-encoding them, or a new megabyte of garbage per page, would make a
	// long listing spend its time here rather than in clerksync.
	buf := listBuffers.Get().(*[]byte)
	defer listBuffers.Put(buf)
	body := append((*buf)[:0], '[')
	for i, u := range users {
		b, err := s.cachedJSON(u)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	*buf = body
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	writeBody(w, http.StatusOK, body)
}

// listBuffers hold the listing pages being written.
var listBuffers = sync.Pool{New: func() any { return new([]byte) }}

// count answers GET /v1/users/count.
func (s *Server) count(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	body, err := json.Marshal(map[string]any{"object": "total_count", "total_count": len(s.filtered(r.URL.Query()))})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// filtered applies user_id, created_at_after and created_at_before (Unix
// ms, exclusive), in created_at order. The result may share the server's
// sorted listing, which PutUsers replaces rather than changes: a caller
// must not modify it. Copying it for every request made a listing of
// 100,000 users spend more in the fake than in the backfill it serves.
func (s *Server) filtered(q url.Values) []User {
	s.mu.Lock()
	users := s.sortedLocked()
	s.mu.Unlock()
	if after := q.Get("created_at_after"); after != "" {
		ms, _ := strconv.ParseInt(after, 10, 64)
		i, _ := slices.BinarySearchFunc(users, ms+1, func(u User, ms int64) int { return cmp.Compare(u.CreatedAt.UnixMilli(), ms) })
		users = users[i:]
	}
	if before := q.Get("created_at_before"); before != "" {
		ms, _ := strconv.ParseInt(before, 10, 64)
		i, _ := slices.BinarySearchFunc(users, ms, func(u User, ms int64) int { return cmp.Compare(u.CreatedAt.UnixMilli(), ms) })
		users = users[:i]
	}
	if ids := q["user_id"]; len(ids) > 0 {
		users = slices.DeleteFunc(slices.Clone(users), func(u User) bool { return !slices.Contains(ids, u.ID) })
	}
	return users
}

func (s *Server) sortedLocked() []User {
	if s.sorted == nil {
		s.sorted = make([]User, 0, len(s.users))
		for _, u := range s.users {
			s.sorted = append(s.sorted, u)
		}
		slices.SortFunc(s.sorted, func(a, b User) int {
			return cmp.Or(cmp.Compare(a.CreatedAt.UnixMilli(), b.CreatedAt.UnixMilli()), cmp.Compare(a.ID, b.ID))
		})
	}
	return s.sorted
}

// injectedFailure answers with the next injected failure, if any.
func (s *Server) injectedFailure(w http.ResponseWriter) bool {
	s.mu.Lock()
	if len(s.listFailures) == 0 {
		s.mu.Unlock()
		return false
	}
	f := s.listFailures[0]
	s.listFailures = s.listFailures[1:]
	s.mu.Unlock()
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	if f.status == http.StatusTooManyRequests {
		writeBody(w, f.status, []byte(`{"errors":[{"message":"Too many requests","long_message":"Too many requests, please try again later.","code":"too_many_requests"}]}`))
		return true
	}
	writeBody(w, f.status, internalErrorBody)
	return true
}
