package clerkfake

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
