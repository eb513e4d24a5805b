package store

import (
	"context"
	"slices"
	"strings"
)

// RowColumn is a column of the row ensure answers: its name and
// PostgreSQL's type (information_schema's data_type; an extension's type by
// its name).
type RowColumn struct {
	Name, DataType string
	Nullable       bool
}

// UserColumns lists the columns of a user's row (User.Row), sorted by
// name: the columns the mapping exposes, plus clerk_id, which the row
// always carries. With a mapping it reads the table's columns on first use.
func (s *Store) UserColumns(ctx context.Context) ([]RowColumn, error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	cols := []RowColumn{{Name: "clerk_id", DataType: "text"}}
	for _, name := range users.Exposed {
		if name == "clerk_id" {
			continue
		}
		ci := users.Columns[name]
		cols = append(cols, RowColumn{Name: name, DataType: ci.DataType, Nullable: ci.Nullable})
	}
	slices.SortFunc(cols, func(a, b RowColumn) int { return strings.Compare(a.Name, b.Name) })
	return cols, nil
}
