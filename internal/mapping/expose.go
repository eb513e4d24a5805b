package mapping

// private reports whether a source holds what Clerk keeps from the user
// and their browser: private metadata (backend-only by Clerk's own
// contract), whole or by path, and the whole user object, which carries it.
// A column of such a source is left out of the row ensure answers unless
// the mapping says expose: true; every other mapped column is in it unless
// the mapping says expose: false. A column the mapping does not name is
// never in it.
func private(source string, path []string) bool {
	switch source {
	case SourcePrivateMetadata:
		return true
	case SourceObject:
		return len(path) == 0 || path[0] == "private_metadata"
	}
	return false
}
