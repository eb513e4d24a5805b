package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
)

// checkMapping checks CLERKSYNC_MAPPING against the database, as the worker
// and the starter do at start-up, so an operator sees every mistake before
// deploying: each on one line, naming the table, the column and the fix.
func checkMapping(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("check-mapping", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: starter check-mapping [--sql]\n\nChecks the mapping file CLERKSYNC_MAPPING names against the database at DATABASE_URL:\n"+
			"every mapped table and column exists, each column's type holds its source, every NOT NULL\n"+
			"column without a default is written, the Clerk ID column is unique. Then it proves the mapping\n"+
			"by writing: a signup with its trial, an update, two minimal rows, the trial's expiry, the\n"+
			"organization and membership writes and the deletions, on representative values, in a\n"+
			"transaction it rolls back, so a CHECK, a length, a JSON value or a unique index the mapping's\n"+
			"own values break is found now. Exits 0 when it fits, 1 with what refused it and the fix.\n"+
			"It changes nothing (the tables' identity sequences advance). --sql also prints every statement.\n\nEnvironment:\n")
		config.PrintVars(stdout, config.Both)
	}
	showSQL := fs.Bool("sql", false, "also print every SQL statement the mapping builds, as clerksync will run it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if cfg.Mapping == nil {
		return errors.New("CLERKSYNC_MAPPING is not set: without a mapping clerksync creates and owns its tables, and there is nothing to check")
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.Layout())
	if err != nil {
		return err
	}
	defer st.Close()
	proved := "and its statements write it"
	switch err := st.ProveMapping(ctx); {
	case errors.Is(err, store.ErrNoBookkeeping):
		proved = "by its catalog (" + err.Error() + ")"
	case err != nil:
		return err
	}
	m := cfg.Mapping
	trials := "off"
	if m.Trials != nil {
		trials = m.Trials.Table.String()
	}
	orgs := "organizations off"
	if o, ms := m.Organizations, m.Memberships; o != nil {
		orgs = fmt.Sprintf("organizations -> %s (%s <- id, %s), deletion %s; memberships -> %s (%s <- id, %s -> organizations, %s -> users, %s)",
			o.Table, o.ClerkID, sources(o.Columns), o.Delete, ms.Table, ms.ClerkID, ms.Organization, ms.User, sources(ms.Columns))
	}
	link := "none"
	if len(m.Users.Link) > 0 {
		link = strings.Join(m.Users.Link, ", ")
	}
	fmt.Fprintf(stdout, "%s fits the database, %s: users -> %s (%s <- id, %s), deletion %s, rows without a Clerk ID linked by %s; trials -> %s; %s\n",
		cfg.MappingFile, proved, m.Users.Table, m.Users.ClerkID, sources(m.Users.Columns), m.Users.Delete, link, trials, orgs)
	if !*showSQL {
		return nil
	}
	statements, err := st.Statements(ctx)
	if err != nil {
		return err
	}
	for _, s := range statements {
		fmt.Fprintf(stdout, "\n-- %s: %s\n%s;\n", s.Entity, s.Name, s.SQL)
	}
	return nil
}

// sources lists mapped columns as "column <- source", with when the
// writes touch them: "(insert)" for one written when the row is created
// only, "(kept)" for one whose row's value stays when Clerk has none.
func sources(cols []mapping.Column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.Name + " <- " + c.Source
		if len(c.Path) > 0 {
			s[i] += "." + strings.Join(c.Path, ".")
		}
		switch {
		case c.InsertOnly:
			s[i] += " (insert)"
		case c.Keep:
			s[i] += " (kept)"
		}
	}
	return strings.Join(s, ", ")
}
