package workflows

import "slices"

// recentIDs remembers the latest Svix message IDs an entity workflow has
// seen, to drop redeliveries. The IDs live in the workflow's state (list),
// oldest first, so they survive continue-as-new; older duplicates still
// lose in the SQL.
type recentIDs struct {
	set  map[string]bool // membership only, never ranged
	list *[]string
}

func newRecentIDs(list *[]string) *recentIDs {
	r := &recentIDs{set: make(map[string]bool, len(*list)), list: list}
	for _, id := range *list {
		r.set[id] = true
	}
	return r
}

func (r *recentIDs) seen(id string) bool { return r.set[id] }

// add remembers id, forgetting the oldest beyond recentEventIDs.
func (r *recentIDs) add(id string) {
	r.set[id] = true
	*r.list = append(*r.list, id)
	if n := len(*r.list); n > recentEventIDs {
		for _, old := range (*r.list)[:n-recentEventIDs] {
			delete(r.set, old)
		}
		*r.list = append([]string(nil), (*r.list)[n-recentEventIDs:]...)
	}
}

// forget drops id, so a redelivery of it applies again.
func (r *recentIDs) forget(id string) {
	if id == "" || !r.set[id] {
		return
	}
	delete(r.set, id)
	*r.list = slices.DeleteFunc(*r.list, func(s string) bool { return s == id })
}
