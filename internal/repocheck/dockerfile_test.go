package repocheck

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Dockerfile, as far as the deployment artifacts depend on it.

// dockerfile is what the tests need from a Dockerfile; the single-stage
// fields describe the final stage.
type dockerfile struct {
	stages     []string // stage names, from FROM ... AS name
	runs       []string // every RUN command, continuation lines joined
	copyDests  []string // COPY destinations in the final stage
	expose     []int
	user       string
	entrypoint []string
	cmd        []string
	// healthcheck is the final stage's HEALTHCHECK: its options and its
	// exec-form command.
	healthOpts []string
	health     []string
	args       map[string]string // ARG name -> default, every stage
	from       []string          // every FROM's base, in order
}

// parseDockerfile reads the instructions the tests rely on. ENTRYPOINT and
// CMD must be in exec (JSON) form.
func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var (
		d       dockerfile
		logical []string
		cur     string
	)
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		logical = append(logical, cur+trimmed)
		cur = ""
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			d.from = append(d.from, f[0])
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				d.stages = append(d.stages, f[2])
			}
			d.copyDests, d.expose, d.user, d.entrypoint, d.cmd = nil, nil, "", nil, nil
			d.healthOpts, d.health = nil, nil
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			if d.args == nil {
				d.args = map[string]string{}
			}
			d.args[name] = def
		case "HEALTHCHECK":
			opts, command, ok := strings.Cut(rest, " CMD ")
			require.True(t, ok, "HEALTHCHECK needs a CMD: %s", rest)
			d.healthOpts = strings.Fields(opts)
			require.NoError(t, json.Unmarshal([]byte(command), &d.health), "HEALTHCHECK CMD must be in exec form")
		case "RUN":
			d.runs = append(d.runs, rest)
		case "COPY":
			f := strings.Fields(rest)
			d.copyDests = append(d.copyDests, f[len(f)-1])
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				require.NoError(t, err, "EXPOSE %s", p)
				d.expose = append(d.expose, n)
			}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(rest), &d.entrypoint), "ENTRYPOINT must be in exec form")
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(rest), &d.cmd), "CMD must be in exec form")
		}
	}
	return d
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	return parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
}

// flagValue returns the value of --name (as "--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDockerfileShape(t *testing.T) {
	d := loadDockerfile(t)
	assert.Equal(t, []int{defaultGRPCPort, defaultHTTPPort}, d.expose, "EXPOSE")
	assert.Equal(t, []string{"/usr/local/bin/tokengate"}, d.entrypoint)
	cfgPath, ok := flagValue(d.cmd, "--config")
	require.True(t, ok, "CMD %q has no --config", d.cmd)
	assert.Equal(t, "/etc/tokengate/tokengate.yaml", cfgPath)
	assert.Equal(t, "serve", d.cmd[0])
	assert.ElementsMatch(t, []string{"/usr/local/bin/tokengate", "/usr/local/bin/mcp-sample"}, d.copyDests)
	assert.NotEmpty(t, d.user, "the final image must not run as root")
	assert.NotEqual(t, "root", d.user)
	assert.NotEqual(t, "0", d.user)
	// tokengate healthcheck without --url probes the default HTTP port.
	assert.Equal(t, []string{"/usr/local/bin/tokengate", "healthcheck"}, d.health)
}

// TestDockerfileBuildsOffline checks the build arguments `make image` uses:
// the defaults are the Docker build (golang, then distroless); with
// BINARIES=prebuilt and RUNTIME_BASE=scratch-root no stage names an image
// from a registry.
func TestDockerfileBuildsOffline(t *testing.T) {
	d := loadDockerfile(t)
	assert.Equal(t, "build", d.args["BINARIES"])
	assert.Equal(t, "gcr.io/distroless/static-debian12:nonroot", d.args["RUNTIME_BASE"])
	assert.Equal(t, []string{"build", "prebuilt", "scratch-root", "binaries", "mcp-sample", "tokengate"}, d.stages)
	assert.Equal(t, []string{"golang:1.26", "scratch", "scratch", "${BINARIES}", "${RUNTIME_BASE}", "${RUNTIME_BASE}"}, d.from)

	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	assert.Contains(t, string(mk), "--build-arg BINARIES=prebuilt")
	assert.Contains(t, string(mk), "--build-arg RUNTIME_BASE=scratch-root")
	assert.Contains(t, string(mk), "--pull=never")
	// The prebuilt stage copies bin/image, which .dockerignore must let in.
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(ignore), "\n"), "!/bin/image")
}

// ---------------------------------------------------------------------------
// The binaries the Dockerfile builds are static: the distroless/static base
// image has no libc and no dynamic loader.

// dockerfileBuildFlags are the flags TestDockerfileBinaryIsStatic uses; the
// test first checks the Dockerfile builds with them.
const dockerfileBuildFlags = `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w`

func TestDockerfileBinaryIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries; skipped with -short")
	}
	d := loadDockerfile(t)
	builds := 0
	for _, r := range d.runs {
		builds += strings.Count(r, dockerfileBuildFlags)
	}
	require.Equal(t, 2, builds, "the Dockerfile's two go build commands must use %s\"", dockerfileBuildFlags)

	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	for _, pkg := range []string{"./cmd/tokengate", "./cmd/mcp-sample"} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), filepath.Base(pkg))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
			cmd.Dir = repoRoot
			// The image is linux; build for it on any host.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
			msg, err := cmd.CombinedOutput()
			require.NoError(t, err, "go build %s:\n%s", pkg, msg)

			f, err := elf.Open(out)
			require.NoError(t, err)
			defer f.Close()
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "a PT_INTERP header asks for a dynamic loader")
				assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "a PT_DYNAMIC header means dynamic linking")
			}
			assert.Nil(t, f.Section(".interp"))
			assert.Nil(t, f.Section(".dynamic"))
			libs, err := f.ImportedLibraries()
			require.NoError(t, err)
			assert.Empty(t, libs)
			// -s: no symbol table.
			_, err = f.Symbols()
			assert.ErrorIs(t, err, elf.ErrNoSymbols)
		})
	}
}
