package sqlgen

// What the compiler reads of the product's tables: their columns, types,
// enums and unique indexes.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/mapping"
)

// TableColumns reads a table's columns from information_schema, or says
// that the table is not there.
func TableColumns(ctx context.Context, q pgx.Tx, entity string, t mapping.Table) (map[string]ColumnInfo, error) {
	rows, err := q.Query(ctx, `
select column_name::text, case when data_type = 'USER-DEFINED' then udt_name::text else data_type::text end, is_nullable = 'YES',
       column_default is not null or is_identity = 'YES' or is_generated <> 'NEVER',
       case when data_type = 'USER-DEFINED' then udt_schema::text else '' end,
       coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder)
                 from pg_type ty join pg_namespace n on n.oid = ty.typnamespace join pg_enum e on e.enumtypid = ty.oid
                 where ty.typname = c.udt_name and n.nspname = c.udt_schema), '{}')
from information_schema.columns c where table_schema = $1 and table_name = $2`, t.Schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", t, err)
	}
	cols := map[string]ColumnInfo{}
	for rows.Next() {
		var name, typeSchema string
		var ci ColumnInfo
		if err := rows.Scan(&name, &ci.DataType, &ci.Nullable, &ci.hasDefault, &typeSchema, &ci.enumLabels); err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", t, err)
		}
		if typeSchema != "" {
			ci.userType = pgx.Identifier{typeSchema, ci.DataType}.Sanitize()
		}
		if len(ci.enumLabels) > 0 {
			ci.enumType = ci.userType
		}
		cols[name] = ci
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", t, err)
	}
	if len(cols) == 0 {
		return nil, &NoTableError{entity: entity, table: t}
	}
	return cols, nil
}

// NoTableError is a mapped table the database does not have.
type NoTableError struct {
	entity string
	table  mapping.Table
}

func (e *NoTableError) Error() string {
	return fmt.Sprintf("%s table %s: no such table (or no privilege to see it); create it, or correct the mapping's %s.table", e.entity, e.table, e.entity)
}

// IsUnique reports whether a unique index (or constraint) of table holds
// column alone, so that ON CONFLICT on it can work.
func IsUnique(ctx context.Context, q pgx.Tx, t mapping.Table, col string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `
select exists (
    select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    where i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass
      and i.indisunique and i.indnkeyatts = 1 and i.indpred is null and a.attname = $3)`, t.Schema, t.Name, col).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for a unique index on %s.%s: %w", t, col, err)
	}
	return ok, nil
}
