// Package keycloak runs a real Keycloak (the distribution `make keycloak`
// fetches into .keycloak/) for the end-to-end tests: one server per test
// binary on free loopback ports, its data in a temporary directory, the
// realm of realm.json imported, and the admin-API calls the tests need (a
// client-credentials token, key providers, token revocation, stop and start).
package keycloak

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RealmJSON is the realm the tests import (realm.json beside this file).
//
//go:embed realm.json
var RealmJSON []byte

// The realm's names and secrets, as realm.json sets them. The secrets are
// test fixtures for a throwaway loopback server.
const (
	Realm = "tokengate"
	// Audience is the MCP resource the audience mapper puts into "aud".
	Audience = "https://mcp.tokengate.test/mcp"

	// AgentClient is the confidential client-credentials client. Its
	// tokens always carry mcp:read; mcp:write and mcp:admin only when
	// asked for with the scope parameter.
	AgentClient = "mcp-agent"
	AgentSecret = "mcp-agent-secret"
	// IntrospectionClient is tokengate's own client for RFC 7662
	// introspection (Keycloak wants it in the token's audience, so the
	// agent's tokens carry it too).
	IntrospectionClient = "tokengate"
	IntrospectionSecret = "tokengate-secret"
	// ExchangeClient may use standard token exchange (RFC 8693) towards
	// BackendClient.
	ExchangeClient = "mcp-exchanger"
	ExchangeSecret = "mcp-exchanger-secret"
	BackendClient  = "mcp-backend"
	// DPoPClient gets DPoP-bound access tokens (RFC 9449).
	DPoPClient = "mcp-dpop-agent"
	DPoPSecret = "mcp-dpop-agent-secret"
)

// admin credentials of the throwaway server (KC_BOOTSTRAP_ADMIN_*).
const (
	adminUser     = "admin"
	adminPassword = "admin-for-tests"
)

// ErrNotInstalled means the Keycloak distribution (or Java) is missing:
// run `make keycloak`.
var ErrNotInstalled = errors.New("keycloak is not installed (run `make keycloak`)")

// Home finds the Keycloak distribution: $KEYCLOAK_HOME, else .keycloak in
// the nearest directory above the working directory that holds go.mod.
func Home() (string, error) {
	if h := os.Getenv("KEYCLOAK_HOME"); h != "" {
		return checkHome(h)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return checkHome(filepath.Join(dir, ".keycloak"))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above the working directory", ErrNotInstalled)
		}
		dir = parent
	}
}

func checkHome(h string) (string, error) {
	if st, err := os.Stat(filepath.Join(h, "bin", "kc.sh")); err != nil || st.IsDir() {
		return "", fmt.Errorf("%w: no %s", ErrNotInstalled, filepath.Join(h, "bin", "kc.sh"))
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		return "", fmt.Errorf("%w: java not found", ErrNotInstalled)
	}
	return h, nil
}

// Options describe a server.
type Options struct {
	// Home is the distribution; "" means Home().
	Home string
	// Dir holds the database and the log; it must exist.
	Dir string
}

// Server is one Keycloak process (stopped and started again on the same
// ports and data).
type Server struct {
	home, dir      string
	port, mgmtPort int
	logPath        string
	client         *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// Started is how long Start took (until the realm was ready), and
	// FromTemplate whether the database came from an earlier run's template.
	Started      time.Duration
	FromTemplate bool
}

// Start launches Keycloak on free loopback ports, waits until it answers
// and imports the realm. ctx bounds the whole start.
func Start(ctx context.Context, o Options) (*Server, error) {
	home := o.Home
	if home == "" {
		h, err := Home()
		if err != nil {
			return nil, err
		}
		home = h
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &Server{
		home: home, dir: o.Dir, port: ports[0], mgmtPort: ports[1],
		logPath: filepath.Join(o.Dir, "keycloak.log"),
		client:  &http.Client{Timeout: 30 * time.Second},
	}
	begin := time.Now()
	template := s.templateDir()
	fromTemplate := copyDir(template, s.dbDir()) == nil
	if err := s.Resume(ctx); err != nil {
		return nil, err
	}
	if err := s.importRealm(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("keycloak: importing the realm: %w\n%s", err, s.Logs(30))
	}
	if !fromTemplate {
		// Creating the schema and the master realm is most of a first
		// start: keep the fresh database as a template for the next runs
		// (a consistent copy needs the server stopped).
		s.Stop()
		_ = saveTemplate(s.dbDir(), template)
		if err := s.Resume(ctx); err != nil {
			return nil, err
		}
	}
	s.Started, s.FromTemplate = time.Since(begin), fromTemplate
	return s, nil
}

func (s *Server) dbDir() string { return filepath.Join(s.dir, "h2") }

// templateDir is where a database with the realm freshly imported is kept,
// per Keycloak distribution and realm.json.
func (s *Server) templateDir() string {
	sum := sha256.Sum256(RealmJSON)
	return filepath.Join(s.home, "tokengate-db", hex.EncodeToString(sum[:8]))
}

// saveTemplate copies the database in src to dst, atomically.
func saveTemplate(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-")
	if err != nil {
		return err
	}
	if err := copyDir(src, tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp) // another run saved one first
		return err
	}
	return nil
}

// copyDir copies the regular files of src into dst (created), failing if
// src holds none.
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("empty template")
	}
	return nil
}

// URL is the server's base URL (http on loopback).
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// Issuer is the realm's issuer, which is also its OIDC discovery base.
func (s *Server) Issuer() string { return s.URL() + "/realms/" + Realm }

// Endpoint is the realm's OIDC endpoint of that name: token, revoke,
// token/introspect, certs.
func (s *Server) Endpoint(name string) string {
	return s.Issuer() + "/protocol/openid-connect/" + name
}

// Resume starts the process (again) on the same ports and data and waits
// until the realm answers. It is a no-op while the process runs.
func (s *Server) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	db := "jdbc:h2:file:" + filepath.Join(s.dbDir(), "keycloakdb") + ";NON_KEYWORDS=VALUE"
	cmd := exec.Command(filepath.Join(s.home, "bin", "kc.sh"), "start-dev",
		"--http-host=127.0.0.1", "--http-port="+strconv.Itoa(s.port),
		"--http-management-port="+strconv.Itoa(s.mgmtPort),
		"--db-url="+db, "--log-level=warn,org.keycloak.events:error")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(),
		"KC_BOOTSTRAP_ADMIN_USERNAME="+adminUser,
		"KC_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword,
		// A test server lives for minutes: the C1 compiler alone starts
		// faster and costs less CPU.
		"JAVA_OPTS_APPEND=-XX:TieredStopAtLevel=1",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("keycloak: starting %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(ctx, done); err != nil {
		s.stopLocked()
		return fmt.Errorf("keycloak: %w\n%s", err, s.Logs(30))
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context, done <-chan struct{}) error {
	url := s.URL() + "/realms/master/.well-known/openid-configuration"
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := probe.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop ends the process group (SIGTERM, SIGKILL after 20s) and waits for
// it. Resume starts it again; Stop on a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
	// Java may leave children in the group behind the script.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	s.cmd, s.done = nil, nil
}

// Logs returns the last n lines of the server's log.
func (s *Server) Logs(n int) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 1<<20 {
		_, _ = f.Seek(st.Size()-1<<20, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
