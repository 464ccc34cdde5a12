package config

import (
	"fmt"
	"os"
	"strings"
)

// A secret is given in one of three keys: inline (key), in a file
// (key_file) or in an environment variable (key_env). Validation requires
// exactly one (oneSecret); the build phase reads it (ReadSecret).

// oneSecret adds a problem at path.key unless exactly one of key, key_file
// and key_env is set.
func (v *validator) oneSecret(path, key string, inline Secret, file, env string) {
	set := 0
	for _, s := range []string{string(inline), file, env} {
		if s != "" {
			set++
		}
	}
	switch {
	case set == 0:
		v.add(path+"."+key, fmt.Sprintf("one of %s, %s_file or %s_env is required", key, key, key))
	case set > 1:
		v.add(path+"."+key, fmt.Sprintf("only one of %s, %s_file or %s_env may be set", key, key, key))
	}
}

// ReadSecret reads a validated secret from whichever of key, key_file (one
// trailing newline trimmed) and key_env is set, and returns the key it came
// from with the value, for error messages at that key. lookup reads the
// environment. Errors never hold the secret.
func ReadSecret(key string, inline Secret, file, env string, lookup func(string) (string, bool)) (string, string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return key + "_file", "", err
		}
		secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if secret == "" {
			return key + "_file", "", fmt.Errorf("%s is empty", file)
		}
		return key + "_file", secret, nil
	case env != "":
		v, ok := lookup(env)
		if !ok || v == "" {
			return key + "_env", "", fmt.Errorf("environment variable %s is not set", env)
		}
		return key + "_env", v, nil
	case inline != "":
		return key, string(inline), nil
	}
	return key, "", fmt.Errorf("one of %s, %s_file or %s_env is required", key, key, key)
}
