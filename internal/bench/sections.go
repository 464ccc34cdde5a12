package main

import (
	"fmt"
	"slices"
	"strings"
)

// allSections are the harness's sections, in report order.
var allSections = []string{"grpc", "memory", "envoy", "introspection"}

// sections is the set of sections a run measures.
type sections map[string]bool

func parseSections(list string) (sections, error) {
	s := sections{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(allSections, name) {
			return nil, fmt.Errorf("unknown section %q (have %s)", name, strings.Join(allSections, ", "))
		}
		s[name] = true
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("no section (have %s)", strings.Join(allSections, ", "))
	}
	return s, nil
}

func (s sections) has(name string) bool { return s[name] }

func (s sections) all() bool { return len(s) == len(allSections) }
