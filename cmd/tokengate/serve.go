package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/server"
)

// loadConfig reads --config (or TOKENGATE_CONFIG) and the environment. On
// problems it runs the build phase too, on the parts that validated, and
// prints every problem of both phases, each with its file and key path.
func loadConfig(path string, stderr io.Writer, cmd string) (*config.Config, int) {
	if path == "" {
		path = os.Getenv(config.EnvConfigFile)
	}
	cfg, probs, err := config.Check(path, os.Environ())
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			printProblems(stderr, cmd, "", cerr.Problems)
			return nil, exitInvalid
		}
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, exitInvalid
	}
	if len(probs) > 0 {
		printProblems(stderr, cmd, path, append(probs, buildProblems(cfg)...))
		return nil, exitInvalid
	}
	return cfg, exitOK
}

// buildProblems runs the build phase on cfg without starting anything: key
// files, secrets and PEM blocks are read and checked as at start-up.
func buildProblems(cfg *config.Config) []config.Problem {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := authz.Build(cfg, authz.BuildOptions{Logger: quiet})
	return problemsOf(err)
}

// problemsOf lists the problems of a configuration error (nil for nil).
func problemsOf(err error) []config.Problem {
	var cerr *config.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cerr):
		return cerr.Problems
	}
	return []config.Problem{{Msg: err.Error()}}
}

// printProblems prints one line per problem, "FILE: key.path: message"
// (without "FILE: " when the configuration came from the environment
// alone).
func printProblems(w io.Writer, cmd, path string, probs []config.Problem) {
	fmt.Fprintf(w, "%s: invalid configuration", cmd)
	if path != "" {
		fmt.Fprintf(w, " in %s", path)
	}
	fmt.Fprintln(w, ":")
	for _, p := range probs {
		if path != "" {
			fmt.Fprintf(w, "%s: ", path)
		}
		fmt.Fprintln(w, p.String())
	}
}

func runServe(args []string, stdout, stderr io.Writer) int {
	const name = "tokengate serve"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); default $"+config.EnvConfigFile)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [--config FILE]\n\nRuns the ext_authz gRPC server and the HTTP port.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsageErr
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsageErr
	}
	if *path == "" {
		*path = os.Getenv(config.EnvConfigFile)
	}
	cfg, code := loadConfig(*path, stderr, name)
	if cfg == nil {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	for _, w := range cfg.Warnings() {
		log.Warn(w.String())
	}
	// Catch SIGHUP before anything can take long, so an early reload
	// signal never kills the process with the default action.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := server.New(cfg, log, server.Options{
		Load:      func() (*config.Config, error) { return config.Load(*path, os.Environ()) },
		WatchFile: *path,
	})
	if err != nil {
		var cerr *config.Error
		if !errors.As(err, &cerr) {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return exitInvalid
		}
		printProblems(stderr, name, *path, cerr.Problems)
		return exitInvalid
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading configuration")
			_ = srv.Reload()
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "error", err)
		return exitInvalid
	}
	return exitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func runConfigCheck(args []string, stdout, stderr io.Writer) int {
	const name = "tokengate config check"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); default $"+config.EnvConfigFile)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s --config FILE\n\nValidates the configuration and prints it with secrets redacted.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsageErr
	}
	if *path == "" {
		*path = os.Getenv(config.EnvConfigFile)
	}
	cfg, code := loadConfig(*path, stderr, name)
	if cfg == nil {
		return code
	}
	if probs := buildProblems(cfg); len(probs) > 0 {
		printProblems(stderr, name, *path, probs)
		return exitInvalid
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", name, w)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitInvalid
	}
	_, _ = stdout.Write(out)
	return exitOK
}
