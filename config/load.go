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
	cfg, probs, _, err := load(path, environ)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		return nil, &Error{probs}
	}
	return cfg, nil
}

// load is Load going on past problems: it returns the Config as far as it
// decoded, with defaults filled in, every problem as reported, and the key
// paths those problems are at in the Config (the quick start reports some
// under the name of the variable that set them instead). An error means
// nothing could be loaded.
func load(path string, environ []string) (*Config, []Problem, []string, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, nil, nil, &Error{[]Problem{{Msg: fmt.Sprintf("%s: %v", path, err)}}}
		}
	}
	var quickProbs []Problem
	quick := false
	if path == "" {
		var values map[string]any
		if values, quickProbs, quick = quickStart(environ); quick {
			for _, key := range []string{"verifiers", "routes"} {
				if err := k.Set(key, values[key]); err != nil {
					return nil, nil, nil, &Error{[]Problem{{Msg: fmt.Sprintf("quick start: %v", err)}}}
				}
			}
		}
	}
	envKeys := 0
	var envProbs []Problem
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   func() []string { return environ },
		TransformFunc: envKey(&envKeys),
	}), nil, koanf.WithMergeFunc(func(src, dest map[string]any) error {
		envProbs = mergeMap(dest, src, configType, "")
		return nil
	}))
	if err != nil {
		return nil, nil, nil, &Error{[]Problem{{Msg: fmt.Sprintf("environment: %v", err)}}}
	}
	if path == "" && envKeys == 0 && !quick {
		return nil, nil, nil, ErrNoConfig
	}
	// clock_skew defaults here rather than in applyDefaults, so that an
	// explicit "0s" stays zero.
	if !k.Exists("server.clock_skew") {
		_ = k.Set("server.clock_skew", DefaultClockSkew.String())
	}
	var cfg Config
	probs := append(quickProbs, envProbs...)
	decodeProbs := decode(k, &cfg)
	probs = append(probs, decodeProbs...)
	var at []string
	for _, p := range append(envProbs, decodeProbs...) {
		at = append(at, p.Path)
	}
	cfg.applyDefaults()
	for _, p := range cfg.Validate() {
		at = append(at, p.Path)
		// A verifier whose entry failed to decode is still "known".
		if name, ok := strings.CutPrefix(p.Msg, "unknown verifier "); ok && k.Exists("verifiers."+strings.Trim(name, `"`)) {
			continue
		}
		if quick {
			// Name the variable to fix, and say nothing twice.
			if v, ok := quickStartPath(p.Path); ok {
				if covered(probs, v) {
					continue
				}
				p.Path = v
			}
		}
		if !covered(probs, p.Path) {
			probs = append(probs, p)
		}
	}
	return &cfg, probs, at, nil
}

// covered reports whether a problem was already reported at path, or a
// value below path failed to decode (and so is missing from the Config):
// validation does not report it again. An unknown key hides nothing.
func covered(probs []Problem, path string) bool {
	for _, p := range probs {
		if p.Path == path {
			return true
		}
		below := strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[")
		if below && p.Msg != msgUnknownKey {
			return true
		}
	}
	return false
}

const msgUnknownKey = "unknown key"

var configType = reflect.TypeFor[Config]()

// mergeMap merges the environment's keys (src) into the file's (dest),
// guided by the Config type t: where t is a list, numeric keys address its
// entries (TOKENGATE_ROUTES__0__RESOURCE changes the first route and keeps
// the others), and one past the end appends an entry. It returns a problem
// for an index beyond that.
func mergeMap(dest, src map[string]any, t reflect.Type, path string) []Problem {
	var probs []Problem
	for _, key := range sortedMapKeys(src) {
		ft := fieldType(t, key)
		var p []Problem
		dest[key], p = mergeValue(dest[key], src[key], ft, joinKey(path, key))
		probs = append(probs, p...)
	}
	return probs
}

func mergeValue(dest, src any, t reflect.Type, path string) (any, []Problem) {
	sm, ok := src.(map[string]any)
	if !ok {
		return src, nil // a plain value replaces whatever was there
	}
	if t != nil && t.Kind() == reflect.Slice && allIndexes(sm) {
		list, _ := dest.([]any)
		list = append([]any(nil), list...)
		var probs []Problem
		keys := sortedMapKeys(sm)
		sort.SliceStable(keys, func(i, j int) bool { return atoi(keys[i]) < atoi(keys[j]) })
		for _, key := range keys {
			i := atoi(key)
			item := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i < len(list):
				var p []Problem
				list[i], p = mergeValue(list[i], sm[key], t.Elem(), item)
				probs = append(probs, p...)
			case i == len(list):
				v, p := mergeValue(nil, sm[key], t.Elem(), item)
				list = append(list, v)
				probs = append(probs, p...)
			default:
				probs = append(probs, Problem{Path: item, Msg: fmt.Sprintf(
					"list index out of range: the list has %d entries, so the next one is %s[%d]", len(list), path, len(list))})
			}
		}
		return list, probs
	}
	dm, ok := dest.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	return dm, mergeMap(dm, sm, t, path)
}

// fieldType returns the type of key inside a value of type t, or nil when
// it is unknown (the decoder then reports the key).
func fieldType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
			if strings.EqualFold(name, key) {
				return f.Type
			}
		}
	}
	return nil
}

func allIndexes(m map[string]any) bool {
	for k := range m {
		if !isDigits(k) || len(k) > 6 {
			return false
		}
	}
	return len(m) > 0
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
// types) into problems with key paths. What can be decoded still is, so
// that validation reports the other problems in the same run.
func decode(k *koanf.Koanf, cfg *Config) []Problem {
	var probs []Problem
	err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{
		Tag:           "koanf",
		DecoderConfig: decoderConfig(cfg, true),
	})
	if err == nil {
		return nil
	}
	raw := k.Raw()
	redact := tokenRedactor(raw)
	for _, line := range flattenErrors(err) {
		line = redact.Replace(line)
		if m := unusedKeys.FindStringSubmatch(line); m != nil {
			parent := m[1]
			if parent == reflect.TypeOf(*cfg).String() {
				parent = "" // mapstructure >= v2.5 names the root by its type
			}
			for _, key := range strings.Split(m[2], ", ") {
				probs = append(probs, Problem{Path: joinPath(parent, key), Msg: msgUnknownKey})
			}
			continue
		}
		probs = append(probs, decodeProblem(line))
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Path < probs[j].Path })

	// Decode again ignoring unknown keys, so that a typo does not drop the
	// entry it sits in (mapstructure drops a map entry that fails to decode).
	*cfg = Config{}
	if d, err := mapstructure.NewDecoder(decoderConfig(cfg, false)); err == nil {
		_ = d.Decode(raw) // the errors were reported above
	}
	// A verifier entry with a value of the wrong type is still dropped:
	// decode it alone, as far as it goes.
	entries, _ := raw["verifiers"].(map[string]any)
	for name, entry := range entries {
		if _, ok := cfg.Verifiers[name]; ok {
			continue
		}
		if _, ok := entry.(map[string]any); !ok {
			continue
		}
		var v Verifier
		if d, err := mapstructure.NewDecoder(decoderConfig(&v, false)); err == nil {
			_ = d.Decode(entry) // the errors were reported above
		}
		if cfg.Verifiers == nil {
			cfg.Verifiers = map[string]Verifier{}
		}
		cfg.Verifiers[name] = v
	}
	return probs
}

func decoderConfig(result any, strict bool) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.StringToSliceHookFunc(","),
			mapstructure.TextUnmarshallerHookFunc(),
		),
		ErrorUnused:      strict,
		WeaklyTypedInput: true,
		Result:           result,
		TagName:          "koanf",
	}
}

// tokenRedactor hides static token values, which are map keys and so would
// otherwise appear in the decoder's key paths ("tokens[dev-alice]").
func tokenRedactor(raw map[string]any) *strings.Replacer {
	var pairs []string
	entries, _ := raw["verifiers"].(map[string]any)
	for _, entry := range entries {
		v, _ := entry.(map[string]any)
		tokens, _ := v["tokens"].(map[string]any)
		for tok := range tokens {
			pairs = append(pairs, "tokens["+tok+"]", "tokens["+Redacted+"]")
		}
	}
	return strings.NewReplacer(pairs...)
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
