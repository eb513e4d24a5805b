package clerkevent

// Content hashes: the tie-break of two versions of one entity with the
// same updated_at, which the store's SQL compares as clerksync does here.
// Their bytes are part of recorded histories: a field added to a hash
// counts only where it is set, so an entity without it hashes as before.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ContentHash is a digest of the stored fields (everything but the version).
// It breaks ties between two different payloads with the same ClerkUpdatedAt:
// the SQL and the workflow both keep the one with the greater hash, so every
// order of arrival ends on the same row. Equal payloads hash equal, so a
// duplicate stays a no-op.
func (u User) ContentHash() string {
	fields := []*string{u.Email, u.FirstName, u.LastName, u.Username, u.ImageURL}
	// The rest counts only where it is set, so a user without it hashes as
	// before these fields existed (recorded histories keep their hashes).
	if extra := u.extraFields(); extra != nil {
		fields = append(fields, extra...)
	}
	return contentHash(fields, u.ClerkCreatedAt)
}

// extraFields are the fields beyond the first five, as text, or nil when
// none is set.
func (u User) extraFields() []*string {
	var verified, addresses, lastSignIn, flags *string
	if u.EmailVerified != nil {
		verified = rawText(strconv.AppendBool(nil, *u.EmailVerified))
	}
	if len(u.EmailAddresses) > 0 {
		addresses = rawText([]byte(strings.Join(u.EmailAddresses, "\x00")))
	}
	if !u.LastSignInAt.IsZero() {
		lastSignIn = rawText(strconv.AppendInt(nil, u.LastSignInAt.UnixMilli(), 10))
	}
	if u.Banned || u.Locked {
		flags = rawText(fmt.Appendf(nil, "%t,%t", u.Banned, u.Locked))
	}
	extra := []*string{verified, addresses, u.Phone, u.ExternalID, rawText(u.PublicMetadata), rawText(u.PrivateMetadata),
		rawText(u.UnsafeMetadata), lastSignIn, flags, rawText(u.Object)}
	// Fields added since: hashed only where set, as above.
	if !u.LastActiveAt.IsZero() || u.Deprovisioned {
		extra = append(extra, rawText(strconv.AppendInt(nil, u.LastActiveAt.UnixMilli(), 10)), rawText(strconv.AppendBool(nil, u.Deprovisioned)))
	}
	for _, f := range extra {
		if f != nil {
			return extra
		}
	}
	return nil
}

// NewerThan reports whether u wins over a stored version with the given
// updated_at and content hash: a later ClerkUpdatedAt, or the same one and a
// greater ContentHash. The store's SQL applies the same rule.
func (u User) NewerThan(version time.Time, hash string) bool {
	if !u.ClerkUpdatedAt.Equal(version) {
		return u.ClerkUpdatedAt.After(version)
	}
	return u.ContentHash() > hash
}

// contentHash digests fields (absence distinct from "") and created.
func contentHash(fields []*string, created time.Time) string {
	h := sha256.New()
	for _, f := range fields {
		if f == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(*f))))
		h.Write([]byte(*f))
	}
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(created.UnixMilli())))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// rawText is raw JSON (or any bytes) as text, nil for none.
func rawText(raw []byte) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}
