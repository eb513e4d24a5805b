package activities

// WriteOutcome says what a write did, in an activity's result. Workflow
// histories record these values, so they never change.
type WriteOutcome string

// Write outcomes.
const (
	// Inserted: the object had no row; one was created.
	Inserted WriteOutcome = "inserted"
	// Updated: the row held an older version and was overwritten.
	Updated WriteOutcome = "updated"
	// Stale: the row already held this version or a newer one.
	Stale WriteOutcome = "stale"
	// Tombstoned: the object (or, for a membership, its organization or
	// user) was deleted; nothing was written.
	Tombstoned WriteOutcome = "tombstoned"
	// Held: a membership waits for the row of the older membership it
	// replaces, which a product's foreign key keeps.
	Held WriteOutcome = "held"
)
