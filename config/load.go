package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment variable tokengate reads.
const EnvPrefix = "TOKENGATE_"

// EnvConfigFile names the configuration file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// Problem is one configuration mistake, tied to its key path.
type Problem struct {
	Path string
	Msg  string
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Error lists every problem found in a configuration.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ErrNoConfig is returned when neither a file nor environment configuration
// was given: tokengate never starts as "allow all".
var ErrNoConfig = errors.New("no configuration: pass --config FILE or set " + EnvConfigFile +
	" (or TOKENGATE_* variables with __ between key levels)")

// Load reads the YAML file at path (if not empty), applies TOKENGATE_*
// overrides from environ ("KEY=value" pairs), fills defaults and validates.
// A returned *Error lists every problem with its key path.
func Load(path string, environ []string) (*Config, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, &Error{[]Problem{{Msg: fmt.Sprintf("%s: %v", path, err)}}}
		}
	}
	envKeys := 0
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   func() []string { return environ },
		TransformFunc: envKey(&envKeys),
	}), nil)
	if err != nil {
		return nil, &Error{[]Problem{{Msg: fmt.Sprintf("environment: %v", err)}}}
	}
	if path == "" && envKeys == 0 {
		return nil, ErrNoConfig
	}
	var cfg Config
	probs := decode(k, &cfg)
	cfg.applyDefaults()
	seen := make(map[string]bool, len(probs))
	for _, p := range probs {
		seen[p.Path] = true
	}
	for _, p := range cfg.Validate() {
		// A verifier whose entry failed to decode is still "known".
		if name, ok := strings.CutPrefix(p.Msg, "unknown verifier "); ok && k.Exists("verifiers."+strings.Trim(name, `"`)) {
			continue
		}
		if !seen[p.Path] {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return nil, &Error{probs}
	}
	return &cfg, nil
}

// envKey maps TOKENGATE_SERVER__GRPC_LISTEN to server.grpc_listen. Variables
// without "__" (TOKENGATE_CONFIG, the quick-start TOKENGATE_JWT_*) are not
// configuration keys and are skipped.
func envKey(count *int) func(k, v string) (string, any) {
	return func(k, v string) (string, any) {
		k = strings.TrimPrefix(k, EnvPrefix)
		if !strings.Contains(k, "__") {
			return "", nil
		}
		*count++
		return strings.ToLower(strings.ReplaceAll(k, "__", ".")), v
	}
}

var unusedKeys = regexp.MustCompile(`'([^']*)' has invalid keys: (.*)$`)

// decode unmarshals k into cfg, turning decoder errors (unknown keys, wrong
// types) into problems with key paths.
func decode(k *koanf.Koanf, cfg *Config) []Problem {
	var probs []Problem
	err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				durationHook,
				mapstructure.StringToSliceHookFunc(","),
				mapstructure.TextUnmarshallerHookFunc(),
			),
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			Result:           cfg,
			TagName:          "koanf",
		},
	})
	if err == nil {
		return nil
	}
	for _, line := range flattenErrors(err) {
		if m := unusedKeys.FindStringSubmatch(line); m != nil {
			for _, key := range strings.Split(m[2], ", ") {
				probs = append(probs, Problem{Path: joinPath(m[1], key), Msg: "unknown key"})
			}
			continue
		}
		probs = append(probs, decodeProblem(line))
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Path < probs[j].Path })
	return probs
}

var quotedPath = regexp.MustCompile(`^'([^']*)' (.*)$`)

func decodeProblem(line string) Problem {
	line = strings.TrimPrefix(line, "decoding failed due to the following error(s):")
	line = strings.TrimSpace(line)
	if m := quotedPath.FindStringSubmatch(line); m != nil {
		return Problem{Path: normalizePath(m[1]), Msg: m[2]}
	}
	return Problem{Msg: line}
}

func flattenErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "decoding failed") {
			out = append(out, strings.TrimPrefix(l, "* "))
		}
	}
	return out
}

// normalizePath turns mapstructure's "verifiers[okta].jwks_uri" into
// "verifiers.okta.jwks_uri"; list indexes stay as "routes[0]".
func normalizePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			end := strings.IndexByte(p[i:], ']')
			if end > 0 {
				inner := p[i+1 : i+end]
				if isDigits(inner) {
					b.WriteString(p[i : i+end+1])
				} else {
					b.WriteString("." + inner)
				}
				i += end
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func joinPath(parent, key string) string {
	parent = normalizePath(parent)
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var durationType = reflect.TypeFor[Duration]()

// durationHook refuses bare numbers for durations: "60" is ambiguous.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		return data, nil
	default:
		return nil, fmt.Errorf("must be a duration like 60s or 15m, not %v", data)
	}
}
