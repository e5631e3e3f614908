package augment

import (
	"fmt"
	"net/url"
)

// FromString reads a spec back from its String form, as a prepared export
// stores it; "" is the zero Spec.
func FromString(s string) (Spec, error) {
	if s == "" {
		return Spec{}, nil
	}
	q, err := url.ParseQuery(s)
	if err != nil {
		return Spec{}, fmt.Errorf("error reading augment spec %q: %w", s, err)
	}
	spec, err := Parse(q.Get("augment"), q.Get("copies"), q.Get("augment_seed"))
	if err != nil {
		return Spec{}, fmt.Errorf("error reading augment spec %q: %w", s, err)
	}
	return spec, nil
}
