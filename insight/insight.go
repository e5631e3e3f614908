// Package insight ranks a dataset's classes by where more data would help
// the models most, from what the hub knows of each: how many instances the
// latest version holds, the latest evaluation's AP, and what reviewers did
// with the models' proposals.
//
// A class's priority is the mean of the signals it has, each from 0 (no
// need) to 1 (great need):
//
//   - scarcity: 1 − instances / median, where median is the median
//     instance count of the other classes (0 at or above it);
//   - weakness: 1 − AP, from the latest evaluation on the version;
//   - poor masks: 1 − the mean IoU of the reviewed proposals with their
//     final masks (a rejected proposal counting 0);
//   - corrections: 1 − the share of reviewed proposals accepted unchanged.
//
// Scarcity is always known; a class without an evaluated AP or without
// reviewed proposals has fewer signals, and its priority is the mean of
// those it has. The suggested target of a campaign for a class is what
// brings it to the median of the others (at least 1).
package insight

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Class is what the hub knows of one class.
type Class struct {
	Label     string
	Images    int
	Instances int
	// AP is the latest evaluation's, nil when none covers the class.
	AP *float64
	// MeanIoU and Acceptance are over reviewed proposals, nil when none.
	MeanIoU    *float64
	Acceptance *float64
}

// Ranked is a class with its priority.
type Ranked struct {
	Class
	Priority float64
	// Reason says how the priority was reached, term by term.
	Reason string
	// SuggestedTarget is how many more instances bring the class to the
	// median of the others.
	SuggestedTarget int
}

// Rank computes every class's priority and sorts them, highest first (ties
// by label).
func Rank(classes []Class) []Ranked {
	out := make([]Ranked, len(classes))
	for i, c := range classes {
		var others []int
		for j, o := range classes {
			if j != i {
				others = append(others, o.Instances)
			}
		}
		med := median(others)
		var terms []string
		sum, n := 0.0, 0
		add := func(v float64, text string) {
			sum += v
			n++
			terms = append(terms, fmt.Sprintf("%s: %.2f", text, v))
		}
		scarcity := 0.0
		if med > 0 {
			scarcity = max(0, 1-float64(c.Instances)/med)
		}
		add(scarcity, fmt.Sprintf("scarcity (%d instances, median of the others %g)", c.Instances, med))
		if c.AP != nil && *c.AP >= 0 {
			add(1-*c.AP, fmt.Sprintf("weakness (AP %.3f)", *c.AP))
		}
		if c.MeanIoU != nil {
			add(1-*c.MeanIoU, fmt.Sprintf("poor masks (mean IoU %.3f)", *c.MeanIoU))
		}
		if c.Acceptance != nil {
			add(1-*c.Acceptance, fmt.Sprintf("corrections (%.0f%% accepted)", 100**c.Acceptance))
		}
		p := sum / float64(n)
		out[i] = Ranked{
			Class: c, Priority: p,
			Reason:          fmt.Sprintf("mean of %s = %.2f", strings.Join(terms, ", "), p),
			SuggestedTarget: max(1, int(math.Ceil(med))-c.Instances),
		}
	}
	slices.SortStableFunc(out, func(a, b Ranked) int {
		if a.Priority != b.Priority {
			if a.Priority > b.Priority {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Label, b.Label)
	})
	return out
}

func median(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}
