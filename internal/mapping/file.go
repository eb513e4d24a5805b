package mapping

// The YAML document's shape, as CLERKSYNC_MAPPING is written: decoded
// strictly (decodeKnown), then checked and turned into a Mapping by
// Parse.

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// file is the YAML document.
type file struct {
	Users         *usersFile       `yaml:"users"`
	Trials        *trialsNode      `yaml:"trials"`
	Organizations *orgsNode        `yaml:"organizations"`
	Memberships   *membershipsFile `yaml:"memberships"`
}

// orgsNode is "off" or the organizations mapping.
type orgsNode struct {
	off  bool
	orgs orgsFile
}

func (o *orgsNode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil || s != "off" {
			return fmt.Errorf("line %d: organizations: want off, or the organizations mapping", n.Line)
		}
		o.off = true
		return nil
	}
	return decodeKnown(n, &o.orgs)
}

// entityFile is what every entity's section has; orgsFile is nothing
// more.
type entityFile struct {
	Table   string                `yaml:"table"`
	ClerkID string                `yaml:"clerk_id"`
	Key     keyFile               `yaml:"key"`
	Columns map[string]columnFile `yaml:"columns"`
	Delete  deleteFile            `yaml:"delete"`
}

type orgsFile = entityFile

type membershipsFile struct {
	entityFile   `yaml:",inline"`
	Organization string `yaml:"organization"`
	User         string `yaml:"user"`
}

type usersFile struct {
	entityFile `yaml:",inline"`
	// Link is nil when the document leaves it out (the default applies).
	Link *[]string `yaml:"link"`
}

type keyFile struct {
	Column   string `yaml:"column"`
	Generate string `yaml:"generate"`
}

func (k *keyFile) UnmarshalYAML(n *yaml.Node) error {
	type plain keyFile
	return decodeKnown(n, (*plain)(k))
}

// columnFile is a column's source: a bare source name, or {source,
// missing, on, expose}.
type columnFile struct {
	Source  string  `yaml:"source"`
	Missing *string `yaml:"missing"`
	On      string  `yaml:"on"`
	Expose  *bool   `yaml:"expose"`
	Keep    bool    `yaml:"keep"`
}

func (c *columnFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&c.Source)
	}
	type plain columnFile
	return decodeKnown(n, (*plain)(c))
}

// deleteFile is "delete", or {soft: {deleted_at, clear}}.
type deleteFile struct {
	Mode      string
	DeletedAt string
	Clear     []string
}

func (d *deleteFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&d.Mode)
	}
	var soft struct {
		Soft *softFile `yaml:"soft"`
	}
	if err := decodeKnown(n, &soft); err != nil {
		return err
	}
	if soft.Soft == nil {
		return fmt.Errorf("line %d: delete: want delete, or soft: {deleted_at: <column>, clear: [<columns>]}", n.Line)
	}
	d.Mode, d.DeletedAt, d.Clear = Soft, soft.Soft.DeletedAt, soft.Soft.Clear
	return nil
}

// softFile is a soft deletion's settings.
type softFile struct {
	DeletedAt string   `yaml:"deleted_at"`
	Clear     []string `yaml:"clear"`
}

func (f *softFile) UnmarshalYAML(n *yaml.Node) error {
	type plain softFile
	return decodeKnown(n, (*plain)(f))
}

// trialsNode is "off" or the trials mapping.
type trialsNode struct {
	off    bool
	trials trialsFile
}

func (t *trialsNode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil || s != "off" {
			return fmt.Errorf("line %d: trials: want off, or the trials mapping", n.Line)
		}
		t.off = true
		return nil
	}
	return decodeKnown(n, &t.trials)
}

type trialsFile struct {
	Table   string                `yaml:"table"`
	User    string                `yaml:"user"`
	Key     keyFile               `yaml:"key"`
	Plan    planFile              `yaml:"plan"`
	Status  statusFile            `yaml:"status"`
	EndsAt  string                `yaml:"ends_at"`
	Columns map[string]columnFile `yaml:"columns"`
}

// planFile is the trial's plan column and value; statusFile its status
// column and values.
type (
	planFile   struct{ Column, Value string }
	statusFile struct{ Column, Trialing, Expired string }
)

func (p *planFile) UnmarshalYAML(n *yaml.Node) error {
	type plain planFile
	return decodeKnown(n, (*plain)(p))
}

func (s *statusFile) UnmarshalYAML(n *yaml.Node) error {
	type plain statusFile
	return decodeKnown(n, (*plain)(s))
}
