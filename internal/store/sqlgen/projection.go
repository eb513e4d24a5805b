package sqlgen

import (
	"crypto/sha256"
	"encoding/hex"
)

// projectionOf names what a table's write makes of Clerk's object: a hash
// of the insert that writes it, so of the mapping's columns, sources and
// defaults as compiled (a change of clerksync's compiler that changes the
// statement counts as a change of projection too, and costs one rewrite
// of each row). The bookkeeping records it beside each row's version.
func projectionOf(write string) string {
	sum := sha256.Sum256([]byte(write))
	return literal("p1:" + hex.EncodeToString(sum[:8]))
}

// holds is the condition under which the recorded state st keeps src from
// being written: st's version, by cmp (the version and its tie-break), is at
// least src's, and either st was written under this projection or its
// Clerk version is newer than src's. So a write of the recorded version
// under another mapping re-projects the row (a column added to the mapping
// is filled by the next backfill, whatever the row's updated_at), while an
// older version never overwrites a newer one under any mapping.
func holds(cmp, projection string) string {
	return cmp + `
             and (st.projection = ` + projection + ` or st.clerk_updated_at > src.updated_at)`
}
