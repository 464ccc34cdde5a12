// Package stack starts Envoy, tokengate and the sample MCP server as real
// processes on loopback, for the demo and the end-to-end tests.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokengate/tokengate/internal/envoycfg"
)

// Ports are the loopback ports of one stack.
type Ports struct {
	Envoy, EnvoyAdmin, GRPC, HTTP, Upstream int
}

// FreePorts picks distinct free loopback ports by binding port 0.
func FreePorts() (Ports, error) {
	var ports [5]int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Ports{}, err
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return Ports{ports[0], ports[1], ports[2], ports[3], ports[4]}, nil
}

// Options describe a stack.
type Options struct {
	// Binaries.
	Tokengate, MCPSample, Envoy string
	// EnvoyTLS makes Envoy's listener TLS with client certificates
	// required, sent to tokengate (include_peer_certificate).
	EnvoyTLS *envoycfg.TLS
	// EnvoyForwardClientCert keeps a client-sent x-forwarded-client-cert
	// (Envoy behind a trusted proxy that sets it).
	EnvoyForwardClientCert bool
	// MCPSampleArgs are extra mcp-sample flags (for example
	// --verify-assertion), given the ports.
	MCPSampleArgs func(Ports) []string
	// Config is tokengate's configuration file. Its listeners are
	// overridden through TOKENGATE_SERVER__* to Ports.
	Config string
	// Env is extra environment for tokengate.
	Env []string
	// Dir receives the rendered Envoy config and one log file per process.
	Dir   string
	Ports Ports
	// EnvoyRoutes are extra Envoy routes before the catch-all (prefix
	// rewrites, pinned tokengate routes); see envoycfg.Params.Routes.
	EnvoyRoutes []envoycfg.Route
	// EnvoyForwardAuth makes Envoy ask tokengate's HTTP port in forward-auth
	// mode (ext_authz http_service) instead of its gRPC port.
	EnvoyForwardAuth bool
	// NoEnvoy starts mcp-sample and tokengate only, for a test that puts
	// another gateway in front of them.
	NoEnvoy bool
	// EnvoyRequestBody makes Envoy send the request body with each check
	// (with_request_body, at most EnvoyMaxRequestBytes; 0 means
	// envoy.DefaultMaxRequestBytes), for MCP operation rules.
	EnvoyRequestBody     bool
	EnvoyMaxRequestBytes int
}

// Stack is a running set of processes.
type Stack struct {
	opts  Options
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// EnvoyURL is the base URL of Envoy's listener.
func (s *Stack) EnvoyURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.opts.Ports.Envoy) }

// UpstreamURL is the base URL of the sample MCP server, bypassing Envoy.
func (s *Stack) UpstreamURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.opts.Ports.Upstream)
}

// TokengateHTTP is the base URL of tokengate's HTTP port.
func (s *Stack) TokengateHTTP() string { return fmt.Sprintf("http://127.0.0.1:%d", s.opts.Ports.HTTP) }

// Start launches mcp-sample, tokengate and Envoy and waits until each is
// ready. On failure everything started is stopped again.
func Start(ctx context.Context, o Options) (*Stack, error) {
	s := &Stack{opts: o}
	p := o.Ports
	params := envoycfg.Params{
		ListenPort: p.Envoy, AdminPort: p.EnvoyAdmin, AuthzPort: p.GRPC, UpstreamPort: p.Upstream,
		Routes:          o.EnvoyRoutes,
		WithRequestBody: o.EnvoyRequestBody, MaxRequestBytes: o.EnvoyMaxRequestBytes,
		DownstreamTLS: o.EnvoyTLS, ForwardClientCert: o.EnvoyForwardClientCert,
	}
	if o.EnvoyForwardAuth {
		params.AuthzHTTPPort = p.HTTP
	}
	envoyCfg, err := envoycfg.Render(params)
	if err != nil {
		return nil, err
	}
	envoyPath := filepath.Join(o.Dir, "envoy.yaml")
	if err := os.WriteFile(envoyPath, envoyCfg, 0o644); err != nil {
		return nil, err
	}
	sampleArgs := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", p.Upstream)}
	if o.MCPSampleArgs != nil {
		sampleArgs = append(sampleArgs, o.MCPSampleArgs(p)...)
	}
	steps := []struct {
		name  string
		bin   string
		args  []string
		env   []string
		ready string
	}{
		{"mcp-sample", o.MCPSample, sampleArgs, nil,
			fmt.Sprintf("http://127.0.0.1:%d/healthz", p.Upstream)},
		{"tokengate", o.Tokengate, []string{"serve", "--config", o.Config}, append([]string{
			fmt.Sprintf("TOKENGATE_SERVER__GRPC_LISTEN=127.0.0.1:%d", p.GRPC),
			fmt.Sprintf("TOKENGATE_SERVER__HTTP_LISTEN=127.0.0.1:%d", p.HTTP),
		}, o.Env...), fmt.Sprintf("http://127.0.0.1:%d/readyz", p.HTTP)},
		{"envoy", o.Envoy, []string{"-c", envoyPath, "--disable-hot-restart", "--log-level", "warn"}, nil,
			fmt.Sprintf("http://127.0.0.1:%d/ready", p.EnvoyAdmin)},
	}
	if o.NoEnvoy {
		steps = steps[:2]
	}
	for _, st := range steps {
		pr, err := s.launch(st.name, st.bin, st.args, st.env)
		if err != nil {
			s.Stop()
			return nil, err
		}
		if err := waitReady(ctx, pr, st.ready); err != nil {
			s.Stop()
			return nil, fmt.Errorf("%s: %w\n%s", st.name, err, tail(pr.log, 20))
		}
	}
	return s, nil
}

func (s *Stack) launch(name, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(s.opts.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	pr := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(pr.done)
	}()
	s.procs = append(s.procs, pr)
	return pr, nil
}

func waitReady(ctx context.Context, pr *proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-pr.done:
			return fmt.Errorf("exited before it was ready (%v)", pr.cmd.ProcessState)
		case <-ctx.Done():
			return errors.New("not ready in time (" + url + ")")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Signal sends sig to the named running process: "mcp-sample",
// "tokengate" or "envoy" (for example SIGHUP to make tokengate reload).
func (s *Stack) Signal(name string, sig os.Signal) error {
	for _, pr := range s.procs {
		if pr.name == name {
			return pr.cmd.Process.Signal(sig)
		}
	}
	return fmt.Errorf("stack: no process %q", name)
}

// Stop ends every process (SIGTERM, then SIGKILL after 5s), Envoy first.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].terminate()
	}
	s.procs = nil
}

// Logs returns the last lines of every process's log, for test failures.
func (s *Stack) Logs(lines int) string {
	var b strings.Builder
	for _, pr := range s.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", pr.name, pr.log, tail(pr.log, lines))
	}
	return b.String()
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// terminate sends SIGTERM to the process group, then SIGKILL after 5s, and
// waits for the process to exit.
func (pr *proc) terminate() {
	_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
	}
}
