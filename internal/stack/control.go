package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// This file holds the fault-injection controls of a running Stack: kill a
// process, start it again on the same ports, run Envoy on an edited
// configuration. The resilience tests (e2e/faults_test.go and
// e2e/soak_test.go) use them.

// EnvoyAdminURL is the base URL of Envoy's admin listener (/stats,
// /ready, ...).
func (s *Stack) EnvoyAdminURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.opts.Ports.EnvoyAdmin)
}

// find returns the index of the named process in s.procs.
func (s *Stack) find(name string) (int, error) {
	for i, pr := range s.procs {
		if pr.name == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("stack: no process %q", name)
}

// ProcessID returns the PID of the named process ("mcp-sample",
// "tokengate" or "envoy"), for reading /proc/PID/status.
func (s *Stack) ProcessID(name string) (int, error) {
	i, err := s.find(name)
	if err != nil {
		return 0, err
	}
	return s.procs[i].cmd.Process.Pid, nil
}

// Kill sends SIGKILL to the named process's group and waits until it has
// exited. The process stays in the stack (its log in Logs) until Restart.
func (s *Stack) Kill(name string) error {
	i, err := s.find(name)
	if err != nil {
		return err
	}
	pr := s.procs[i]
	select {
	case <-pr.done:
		return fmt.Errorf("stack: %s has already exited (%v)", name, pr.cmd.ProcessState)
	default:
	}
	if err := syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("stack: killing %s: %w", name, err)
	}
	select {
	case <-pr.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stack: %s did not exit after SIGKILL", name)
	}
}

// Restart starts the named process again, after Kill (or after it exited
// on its own), with the same binary, arguments and environment, so on the
// same ports, appending to the same log, and waits until it is ready.
func (s *Stack) Restart(ctx context.Context, name string) error {
	i, err := s.find(name)
	if err != nil {
		return err
	}
	old := s.procs[i]
	select {
	case <-old.done:
	default:
		return fmt.Errorf("stack: %s is still running; Kill it first", name)
	}
	return s.relaunch(ctx, i, old.cmd.Args[1:])
}

// RestartEnvoyWith stops Envoy (SIGTERM), passes the configuration it was
// running to edit, writes the result beside it as envoy-edited.yaml and
// starts Envoy on that file with the same ports and flags, waiting until it
// is ready. Tests use it for settings the shipped template does not carry
// (circuit-breaker thresholds for a soak, for example).
func (s *Stack) RestartEnvoyWith(ctx context.Context, edit func([]byte) ([]byte, error)) error {
	i, err := s.find("envoy")
	if err != nil {
		return err
	}
	pr := s.procs[i]
	args := slices.Clone(pr.cmd.Args[1:])
	c := slices.Index(args, "-c")
	if c < 0 || c+1 >= len(args) {
		return errors.New("stack: Envoy runs without -c FILE")
	}
	cfg, err := os.ReadFile(args[c+1])
	if err != nil {
		return err
	}
	if cfg, err = edit(cfg); err != nil {
		return fmt.Errorf("stack: editing the Envoy configuration: %w", err)
	}
	edited := filepath.Join(s.opts.Dir, "envoy-edited.yaml")
	if err := os.WriteFile(edited, cfg, 0o644); err != nil {
		return err
	}
	args[c+1] = edited
	pr.terminate()
	return s.relaunch(ctx, i, args)
}

// readyURL is where the named process says it is ready.
func (s *Stack) readyURL(name string) (string, error) {
	switch name {
	case "mcp-sample":
		return s.UpstreamURL() + "/healthz", nil
	case "tokengate":
		return s.TokengateHTTP() + "/readyz", nil
	case "envoy":
		return s.EnvoyAdminURL() + "/ready", nil
	}
	return "", fmt.Errorf("stack: cannot restart %q", name)
}

// relaunch replaces s.procs[i], which has exited, by a new run of the same
// binary with args and the same environment, and waits until it is ready.
func (s *Stack) relaunch(ctx context.Context, i int, args []string) error {
	old := s.procs[i]
	ready, err := s.readyURL(old.name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(old.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "--- stack: restarting %s\n", old.name)
	cmd := exec.Command(old.cmd.Path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = old.cmd.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("restarting %s: %w", old.name, err)
	}
	pr := &proc{name: old.name, cmd: cmd, log: old.log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(pr.done)
	}()
	s.procs[i] = pr
	if err := waitReady(ctx, pr, ready); err != nil {
		return fmt.Errorf("%s: %w\n%s", pr.name, err, tail(pr.log, 20))
	}
	return nil
}
