package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Check loads like Load but goes on past problems, so that one run can
// report every problem of both phases. It returns every problem found while
// loading and validating, and the parts of the configuration that
// validated, for the build phase (authz.Build) to check in turn: the
// verifiers without a problem, and the routes without one. A route with a
// problem stands in as an empty anonymous route of the same name, so that
// the others keep their index and the build phase's key paths stay right.
// With no problems, the Config is the whole configuration. An error means
// nothing could be loaded (an unreadable file, ErrNoConfig).
func Check(path string, environ []string) (*Config, []Problem, error) {
	cfg, probs, at, err := load(path, environ)
	if err != nil || len(probs) == 0 {
		return cfg, nil, err
	}
	return cfg.validParts(at), probs, nil
}

// validParts returns a copy of c without the verifiers and routes that a
// problem at one of the key paths at (or below them) is about.
func (c *Config) validParts(at []string) *Config {
	touched := func(path string) bool {
		return slices.ContainsFunc(at, func(p string) bool {
			return p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[")
		})
	}
	out := *c
	out.Verifiers = maps.Clone(c.Verifiers)
	for name := range out.Verifiers {
		if touched("verifiers." + name) {
			delete(out.Verifiers, name)
		}
	}
	out.Routes = slices.Clone(c.Routes)
	for i, r := range out.Routes {
		if touched(fmt.Sprintf("routes[%d]", i)) {
			out.Routes[i] = Route{Name: r.Name, Match: Match{PathPrefix: "/"}, AllowAnonymous: true}
		}
	}
	return &out
}
