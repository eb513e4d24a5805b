package activities

import "testing"

// A count a page read proves narrows a bound's search but is never taken
// for the bound: its reader is there already, and the window it reads
// cannot be split behind it (the bound would be lost, two windows' users
// left to one reader).
func TestCountCurve_AReadPointIsNeverABound(t *testing.T) {
	c := &countCurve{points: []countPoint{{at: 0, n: 0}, {at: 10_000, n: 10_000}}}
	c.add(countPoint{at: 1_000, n: 1_000, read: true})
	lo, hi, _, ok := c.bracket(1_200, 500)
	if ok {
		t.Fatal("a read point within tolerance was taken for the bound")
	}
	if lo.at != 1_000 || hi.at != 10_000 {
		t.Fatalf("bracket = %+v, %+v: the read point does not narrow the search", lo, hi)
	}
	c.add(countPoint{at: 1_300, n: 1_300})
	if _, _, near, ok := c.bracket(1_200, 500); !ok || near.at != 1_300 {
		t.Fatalf("a count within tolerance was not taken for the bound: %+v, %t", near, ok)
	}
}
