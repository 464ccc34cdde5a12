package repocheck

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/internal/envoycfg"
	"github.com/tokengate/tokengate/keys"
	"github.com/tokengate/tokengate/server/extauthz"
)

// composeDir holds docker-compose.yml and the files it mounts.
const composeDir = repoRoot + "/deploy/compose"

// composeFile is the part of the Compose specification the shipped file
// uses. It is decoded strictly: a key not modelled here (a typo such as
// "depend_on") fails the test; add real Compose keys here when the file
// starts using them.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]struct{}       `yaml:"volumes"`
}

type composeService struct {
	Image       string                      `yaml:"image"`
	Build       *composeBuild               `yaml:"build"`
	Entrypoint  []string                    `yaml:"entrypoint"`
	Command     []string                    `yaml:"command"`
	Environment map[string]string           `yaml:"environment"`
	EnvFile     []string                    `yaml:"env_file"`
	Volumes     []string                    `yaml:"volumes"`
	Ports       []string                    `yaml:"ports"`
	Expose      []string                    `yaml:"expose"`
	DependsOn   map[string]composeDependsOn `yaml:"depends_on"`
	Healthcheck *composeHealthcheck         `yaml:"healthcheck"`
	ReadOnly    bool                        `yaml:"read_only"`
	CapDrop     []string                    `yaml:"cap_drop"`
	SecurityOpt []string                    `yaml:"security_opt"`
	Restart     string                      `yaml:"restart"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

type composeDependsOn struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// composeVolume is one short-syntax volume: SOURCE:TARGET[:MODE].
type composeVolume struct {
	source, target string
	readOnly, bind bool
}

func parseComposeVolume(t *testing.T, s string) composeVolume {
	t.Helper()
	parts := strings.Split(s, ":")
	require.True(t, len(parts) == 2 || len(parts) == 3, "volume %q: want SOURCE:TARGET[:MODE]", s)
	v := composeVolume{source: parts[0], target: parts[1]}
	v.bind = strings.HasPrefix(v.source, ".") || strings.HasPrefix(v.source, "/")
	if len(parts) == 3 {
		require.Contains(t, []string{"ro", "rw"}, parts[2], "volume %q mode", s)
		v.readOnly = parts[2] == "ro"
	}
	return v
}

// composePort is one short-syntax published port: [IP:]HOST:CONTAINER.
type composePort struct {
	ip                  string
	host, containerPort int
}

func parseComposePort(t *testing.T, s string) composePort {
	t.Helper()
	parts := strings.Split(s, ":")
	require.True(t, len(parts) == 2 || len(parts) == 3, "port %q: want [IP:]HOST:CONTAINER", s)
	var p composePort
	if len(parts) == 3 {
		p.ip = parts[0]
		parts = parts[1:]
	}
	var err error
	p.host, err = strconv.Atoi(parts[0])
	require.NoError(t, err, "port %q", s)
	p.containerPort, err = strconv.Atoi(parts[1])
	require.NoError(t, err, "port %q", s)
	return p
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	return c
}

// service returns the named service or fails.
func (c composeFile) service(t *testing.T, name string) composeService {
	t.Helper()
	s, ok := c.Services[name]
	require.True(t, ok, "no service %q", name)
	return s
}

// mountOf returns the service's volume mounted at target.
func (s composeService) mountOf(t *testing.T, target string) (composeVolume, bool) {
	t.Helper()
	for _, v := range s.Volumes {
		if cv := parseComposeVolume(t, v); cv.target == target {
			return cv, true
		}
	}
	return composeVolume{}, false
}

// composeTokengateConfig is the compose stack's tokengate.yaml, loaded.
func composeTokengateConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join(composeDir, "tokengate.yaml"), nil)
	require.NoError(t, err)
	return cfg
}

func TestComposeStrictDecodeRejectsTypos(t *testing.T) {
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader("services:\n  envoy:\n    depend_on: [tokengate]\n"))
	dec.KnownFields(true)
	require.ErrorContains(t, dec.Decode(&c), "field depend_on not found")
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"keygen", "tokengate", "mcp-sample", "envoy"}, names)
}

// TestComposeLocalFilesExist checks every file the compose file refers to
// (build contexts, Dockerfiles, bind mounts, env files) exists relative to
// the compose file, and every named volume is declared.
func TestComposeLocalFilesExist(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	for name, s := range c.Services {
		t.Run(name, func(t *testing.T) {
			if s.Build != nil {
				ctx := filepath.Join(composeDir, filepath.FromSlash(s.Build.Context))
				st, err := os.Stat(ctx)
				require.NoError(t, err, "build.context")
				require.True(t, st.IsDir(), "build.context %s is a directory", ctx)
				dockerfile := s.Build.Dockerfile
				if dockerfile == "" {
					dockerfile = "Dockerfile"
				}
				_, err = os.Stat(filepath.Join(ctx, filepath.FromSlash(dockerfile)))
				require.NoError(t, err, "build.dockerfile")
				// The context is the repository: the Dockerfile's go build
				// needs go.mod and the commands.
				for _, f := range []string{"go.mod", "cmd/tokengate", "cmd/mcp-sample"} {
					_, err := os.Stat(filepath.Join(ctx, filepath.FromSlash(f)))
					require.NoError(t, err, "build.context %s holds %s", s.Build.Context, f)
				}
				if s.Build.Target != "" {
					assert.Contains(t, d.stages, s.Build.Target, "build.target is a stage of the Dockerfile")
				}
			} else {
				assert.NotEmpty(t, s.Image, "a service without build has an image")
			}
			for _, v := range s.Volumes {
				cv := parseComposeVolume(t, v)
				if cv.bind {
					_, err := os.Stat(filepath.Join(composeDir, filepath.FromSlash(cv.source)))
					require.NoError(t, err, "bind mount %s", v)
				} else {
					_, ok := c.Volumes[cv.source]
					assert.True(t, ok, "named volume %s is declared under volumes:", cv.source)
				}
			}
			for _, f := range s.EnvFile {
				_, err := os.Stat(filepath.Join(composeDir, filepath.FromSlash(f)))
				require.NoError(t, err, "env_file %s", f)
			}
			for dep := range s.DependsOn {
				_, ok := c.Services[dep]
				assert.True(t, ok, "depends_on %s", dep)
			}
		})
	}
}

// TestComposeNoHostInterpolation checks every "$" in the compose file's
// values is escaped as "$$": the shell in the container expands the
// variables, not Compose from the host's environment at start-up.
func TestComposeNoHostInterpolation(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(b, &root))
	var walk func(n *yaml.Node)
	scalars := 0
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			scalars++
			assert.NotContains(t, strings.ReplaceAll(n.Value, "$$", ""), "$", "line %d: unescaped $ is interpolated by Compose", n.Line)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	assert.Positive(t, scalars)
}

// TestComposeTokengateService checks tokengate's service against the image
// and tokengate's defaults: config mounted where the image's CMD reads it,
// the key volume where the config expects the public key, a healthcheck on
// the readiness endpoint with the binary the image ships.
func TestComposeTokengateService(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	s := c.service(t, "tokengate")
	cfg := composeTokengateConfig(t)

	require.NotNil(t, s.Build)
	assert.Empty(t, s.Build.Target, "tokengate runs the final image")
	assert.Empty(t, s.Entrypoint, "the image's ENTRYPOINT")
	assert.Empty(t, s.Command, "the image's CMD")
	cfgPath, ok := flagValue(d.cmd, "--config")
	require.True(t, ok)
	mount, ok := s.mountOf(t, cfgPath)
	require.True(t, ok, "nothing mounted at %s, where the image's CMD reads the config", cfgPath)
	assert.Equal(t, "./tokengate.yaml", mount.source)
	assert.True(t, mount.readOnly)

	assert.Equal(t, ":"+strconv.Itoa(defaultGRPCPort), cfg.Server.GRPCListen)
	assert.Equal(t, ":"+strconv.Itoa(defaultHTTPPort), cfg.Server.HTTPListen)
	assert.ElementsMatch(t, []string{strconv.Itoa(defaultGRPCPort), strconv.Itoa(defaultHTTPPort)}, s.Expose)

	keysMount, ok := s.mountOf(t, "/keys")
	require.True(t, ok, "the key volume is mounted at /keys")
	assert.False(t, keysMount.bind)
	assert.True(t, keysMount.readOnly, "tokengate only reads the keys")
	for name, v := range cfg.Verifiers {
		if v.PublicKeyFile != "" {
			assert.True(t, strings.HasPrefix(v.PublicKeyFile, "/keys/"), "verifier %s reads its key from the key volume", name)
			assert.Equal(t, keys.PublicKeyFile, path.Base(v.PublicKeyFile))
		}
	}

	require.NotNil(t, s.Healthcheck)
	test := s.Healthcheck.Test
	require.GreaterOrEqual(t, len(test), 3)
	assert.Equal(t, "CMD", test[0], "exec form: the image has no shell")
	assert.Contains(t, d.copyDests, test[1], "the healthcheck runs a binary the image ships")
	assert.Equal(t, "healthcheck", test[2])
	hcURL, ok := flagValue(test, "--url")
	if !ok {
		hcURL = "http://127.0.0.1:9192/readyz" // the subcommand's default
	}
	u, err := url.Parse(hcURL)
	require.NoError(t, err)
	assert.Equal(t, "/readyz", u.Path)
	assert.Equal(t, strconv.Itoa(defaultHTTPPort), u.Port())

	assert.Equal(t, "service_completed_successfully", s.DependsOn["keygen"].Condition)
	assert.True(t, s.ReadOnly)
	assert.Contains(t, s.CapDrop, "ALL")
}

func TestComposeMCPSampleService(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	s := c.service(t, "mcp-sample")
	require.NotNil(t, s.Build)
	require.NotEmpty(t, s.Entrypoint)
	assert.Equal(t, "/usr/local/bin/mcp-sample", s.Entrypoint[0])
	assert.Contains(t, d.copyDests, s.Entrypoint[0], "the image ships the entrypoint")
	listen, ok := flagValue(s.Entrypoint, "--listen")
	require.True(t, ok)
	host, _, err := net.SplitHostPort(listen)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0", host, "reachable from the envoy container")
	assert.Contains(t, s.Entrypoint, "--disable-localhost-protection")
	assert.Empty(t, s.Ports, "only Envoy reaches the MCP server")

	require.NotNil(t, s.Healthcheck)
	assert.Contains(t, d.copyDests, s.Healthcheck.Test[1])
	hcURL, ok := flagValue(s.Healthcheck.Test, "--url")
	require.True(t, ok)
	u, err := url.Parse(hcURL)
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(listen)
	assert.Equal(t, port, u.Port(), "the healthcheck probes mcp-sample's own port")
	assert.Equal(t, "/healthz", u.Path)
}

// composeEnvoyConfig is the compose stack's envoy.yaml as a generic document.
func composeEnvoyConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeDir, "envoy.yaml"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	return doc
}

// clusterEndpoint returns a cluster of an Envoy bootstrap and its single
// endpoint's address and port.
func clusterEndpoint(t *testing.T, doc map[string]any, name string) (map[string]any, string, int) {
	t.Helper()
	clusters := dig(t, doc, "static_resources", "clusters").([]any)
	for _, c := range clusters {
		cl := c.(map[string]any)
		if cl["name"] != name {
			continue
		}
		sa := dig(t, cl, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address").(map[string]any)
		return cl, sa["address"].(string), sa["port_value"].(int)
	}
	t.Fatalf("no cluster %q", name)
	return nil, "", 0
}

func TestComposeEnvoyService(t *testing.T) {
	c := loadCompose(t)
	s := c.service(t, "envoy")
	doc := composeEnvoyConfig(t)

	// The official image, at the version the Makefile installs for tests.
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ENVOY_VERSION \?= (\S+)$`).FindSubmatch(mk)
	require.NotNil(t, m, "ENVOY_VERSION in the Makefile")
	assert.Equal(t, "envoyproxy/envoy:v"+string(m[1]), s.Image)

	cfgPath, ok := flagValue(s.Command, "-c")
	require.True(t, ok, "envoy's command names its config with -c")
	mount, ok := s.mountOf(t, cfgPath)
	require.True(t, ok, "nothing mounted at %s", cfgPath)
	assert.Equal(t, "./envoy.yaml", mount.source)
	assert.True(t, mount.readOnly)

	// Published port -> listener.
	require.Len(t, s.Ports, 1)
	pub := parseComposePort(t, s.Ports[0])
	listener := dig(t, doc, "static_resources", "listeners", 0, "address", "socket_address").(map[string]any)
	assert.Equal(t, "0.0.0.0", listener["address"])
	assert.Equal(t, pub.containerPort, listener["port_value"])
	assert.Equal(t, 10000, pub.host)

	// ext_authz -> tokengate over HTTP/2, fail closed.
	hcm := dig(t, doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	extAuthz := dig(t, hcm, "http_filters", 0).(map[string]any)
	assert.Equal(t, "envoy.filters.http.ext_authz", extAuthz["name"])
	assert.Equal(t, false, dig(t, extAuthz, "typed_config", "failure_mode_allow"))
	authzCluster := dig(t, extAuthz, "typed_config", "grpc_service", "envoy_grpc", "cluster_name").(string)
	cl, host, port := clusterEndpoint(t, doc, authzCluster)
	assert.Equal(t, "tokengate", host, "the compose service name")
	assert.Equal(t, defaultGRPCPort, port)
	assert.Equal(t, "STRICT_DNS", cl["type"])
	assert.NotNil(t, dig(t, cl, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
		"explicit_http_config", "http2_protocol_options"), "gRPC needs HTTP/2")

	// Every route goes to mcp-sample, at the port it listens on.
	routes := dig(t, hcm, "route_config", "virtual_hosts", 0, "routes").([]any)
	require.NotEmpty(t, routes)
	for i := range routes {
		upstream := dig(t, routes[i], "route", "cluster").(string)
		cl, host, port := clusterEndpoint(t, doc, upstream)
		assert.Equal(t, "mcp-sample", host)
		listen, _ := flagValue(c.service(t, "mcp-sample").Entrypoint, "--listen")
		assert.Equal(t, ":"+strconv.Itoa(port), listen[strings.LastIndex(listen, ":"):])
		assert.Equal(t, "STRICT_DNS", cl["type"])
	}

	assert.Equal(t, "service_healthy", s.DependsOn["tokengate"].Condition)
	assert.Equal(t, "service_healthy", s.DependsOn["mcp-sample"].Condition)
}

// TestComposeEnvoyMatchesTemplate keeps the compose Envoy configuration in
// step with internal/envoycfg/envoy.yaml.tmpl (what the demo and the e2e suite run): the same
// filter chain (with the request body forwarded, as MCP routes need), the
// same tokengate cluster options. Only addresses and the cluster discovery
// type differ.
func TestComposeEnvoyMatchesTemplate(t *testing.T) {
	p := ports
	p.WithRequestBody, p.MaxRequestBytes = true, envoycfg.DefaultMaxRequestBytes
	rendered, err := envoycfg.Render(p)
	require.NoError(t, err)
	var tmplDoc map[string]any
	require.NoError(t, yaml.Unmarshal(rendered, &tmplDoc))
	doc := composeEnvoyConfig(t)

	assert.Equal(t,
		dig(t, tmplDoc, "static_resources", "listeners", 0, "filter_chains"),
		dig(t, doc, "static_resources", "listeners", 0, "filter_chains"))
	for _, name := range []string{"tokengate", "upstream"} {
		want, _, _ := clusterEndpoint(t, tmplDoc, name)
		got, _, _ := clusterEndpoint(t, doc, name)
		for _, k := range []string{"connect_timeout", "typed_extension_protocol_options"} {
			assert.Equal(t, want[k], got[k], "cluster %s: %s", name, k)
		}
	}
}

// keygenScript returns the keygen service's shell script, after Compose's
// "$$" -> "$" unescaping, as logical lines (backslash continuations joined).
func keygenScript(t *testing.T, s composeService) []string {
	t.Helper()
	require.Equal(t, []string{"/bin/sh", "-ec"}, s.Entrypoint)
	require.Len(t, s.Command, 1, "the script is the single argument of sh -c")
	script := strings.ReplaceAll(s.Command[0], "$$", "$")
	script = strings.ReplaceAll(script, "\\\n", " ")
	return strings.Split(script, "\n")
}

// shellWords splits a simple shell command line: whitespace-separated
// words, double quotes, $NAME expanded from env; it stops at a redirection.
func shellWords(line string, env map[string]string) []string {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		inQuote bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '"':
			inQuote = !inQuote
			inWord = true
		case ch == '$':
			j := i + 1
			for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || line[j] >= '0' && line[j] <= '9') {
				j++
			}
			cur.WriteString(env[line[i+1:j]])
			inWord = true
			i = j - 1
		case !inQuote && (ch == ' ' || ch == '\t'):
			flush()
		case !inQuote && ch == '>':
			flush()
			return words
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words
}

func TestShellWords(t *testing.T) {
	env := map[string]string{"A": "x y", "B": "z"}
	tests := []struct {
		line string
		want []string
	}{
		{`cmd --a "$A" --b $B > out`, []string{"cmd", "--a", "x y", "--b", "z"}},
		{`  cmd   "q r"  `, []string{"cmd", "q r"}},
		{`cmd "" $UNSET`, []string{"cmd", "", ""}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, shellWords(tc.line, env), tc.line)
	}
}

// keygenCommand finds the tokengate invocation with the given subcommand
// in the keygen script and returns its arguments after the subcommand.
func keygenCommand(t *testing.T, s composeService, sub ...string) []string {
	t.Helper()
	for _, line := range keygenScript(t, s) {
		w := shellWords(strings.TrimSpace(line), s.Environment)
		if len(w) > len(sub) && w[0] == "/out/tokengate" && slices.Equal(w[1:1+len(sub)], sub) {
			return w[1+len(sub):]
		}
	}
	t.Fatalf("the keygen script never runs tokengate %s", strings.Join(sub, " "))
	return nil
}

func TestComposeKeygenService(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	s := c.service(t, "keygen")
	cfg := composeTokengateConfig(t)

	// It runs the binary the Dockerfile builds (and the final image ships).
	require.NotNil(t, s.Build)
	require.NotEmpty(t, s.Build.Target)
	built := false
	for _, r := range d.runs {
		built = built || strings.Contains(r, "-o /out/tokengate ./cmd/tokengate")
	}
	assert.True(t, built, "stage %s builds /out/tokengate", s.Build.Target)

	keysMount, ok := s.mountOf(t, "/keys")
	require.True(t, ok)
	assert.False(t, keysMount.readOnly)
	tgKeys, _ := c.service(t, "tokengate").mountOf(t, "/keys")
	assert.Equal(t, keysMount.source, tgKeys.source, "keygen and tokengate share the key volume")

	gen := keygenCommand(t, s, "keys", "generate")
	alg, _ := flagValue(gen, "--alg")
	kid, _ := flagValue(gen, "--kid")
	out, _ := flagValue(gen, "--out")
	assert.Equal(t, "ES256", alg)
	assert.Equal(t, "demo", kid)
	assert.Equal(t, "/keys", out)
	script := strings.Join(keygenScript(t, s), "\n")
	assert.Contains(t, script, "if [ -f /keys/"+keys.PrivateKeyFile+" ]", "an existing key is kept")
	assert.Contains(t, script, "/keys/token", "the token is written to the volume")

	mint := keygenCommand(t, s, "token", "mint")
	mintKey, _ := flagValue(mint, "--key")
	mintAlg, _ := flagValue(mint, "--alg")
	mintKid, _ := flagValue(mint, "--kid")
	assert.Equal(t, "/keys/"+keys.PrivateKeyFile, mintKey)
	assert.Equal(t, alg, mintAlg)
	assert.Equal(t, kid, mintKid)

	// The token is for the configured issuer and the route's resource, as
	// clients reach it through the published Envoy port, with its scopes.
	iss, _ := flagValue(mint, "--iss")
	aud, _ := flagValue(mint, "--aud")
	scope, _ := flagValue(mint, "--scope")
	require.Len(t, cfg.Verifiers, 1)
	for _, v := range cfg.Verifiers {
		assert.Equal(t, v.Issuer, iss)
		assert.Contains(t, v.Algorithms, alg)
	}
	require.Len(t, cfg.Routes, 1)
	assert.Equal(t, cfg.Routes[0].Resource, aud)
	for _, req := range cfg.Routes[0].RequiredScopes {
		assert.Contains(t, strings.Fields(scope), req)
	}
	u, err := url.Parse(aud)
	require.NoError(t, err)
	pub := parseComposePort(t, c.service(t, "envoy").Ports[0])
	assert.Equal(t, strconv.Itoa(pub.host), u.Port(), "the resource is Envoy's published port")
	assert.Equal(t, "localhost", u.Hostname())
}

// TestComposeTokenIsAccepted does what the stack does at start-up, without
// Docker: the keygen script's key and token (same algorithm, kid, issuer,
// audience, scopes), tokengate.yaml with the key volume's public key, and a
// Check for the demo's curl through Envoy: allowed with the token, 401
// without.
func TestComposeTokenIsAccepted(t *testing.T) {
	c := loadCompose(t)
	s := c.service(t, "keygen")
	gen := keygenCommand(t, s, "keys", "generate")
	mint := keygenCommand(t, s, "token", "mint")
	alg, _ := flagValue(gen, "--alg")
	kid, _ := flagValue(gen, "--kid")
	keyDir := filepath.Join(t.TempDir(), "keys")
	_, err := keys.Generate(alg, kid, keyDir)
	require.NoError(t, err)

	flag := func(name string) string {
		v, ok := flagValue(mint, name)
		require.True(t, ok, "token mint %s", name)
		return v
	}
	token, err := keys.Mint(keys.MintOptions{
		KeyFile: filepath.Join(keyDir, keys.PrivateKeyFile), Alg: flag("--alg"), Kid: flag("--kid"),
		Issuer: flag("--iss"), Audience: []string{flag("--aud")}, Subject: flag("--sub"), Scope: flag("--scope"),
	})
	require.NoError(t, err)

	raw, err := os.ReadFile(filepath.Join(composeDir, "tokengate.yaml"))
	require.NoError(t, err)
	const volumeKey = "/keys/" + keys.PublicKeyFile
	require.Contains(t, string(raw), volumeKey)
	cfgText := strings.ReplaceAll(string(raw), volumeKey, filepath.Join(keyDir, keys.PublicKeyFile))
	cfgPath := filepath.Join(t.TempDir(), "tokengate.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfgText), 0o600))
	cfg, err := config.Load(cfgPath, nil)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy, err := authz.Build(cfg, authz.BuildOptions{Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	policy.Start(ctx)
	require.Empty(t, policy.NotReady())
	svc := extauthz.NewService(authz.NewService(policy, logger, nil))

	aud, err := url.Parse(flag("--aud"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		headers map[string]string
		allowed bool
		status  typev3.StatusCode
	}{
		{"with the keygen token", map[string]string{"authorization": "Bearer " + token}, true, 0},
		{"without a token", map[string]string{}, false, typev3.StatusCode_Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := svc.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "POST", Host: aud.Host, Path: aud.Path, Headers: tc.headers,
				}},
			}})
			require.NoError(t, err)
			if tc.allowed {
				assert.Equal(t, int32(codes.OK), resp.GetStatus().GetCode())
				var sub string
				for _, h := range resp.GetOkResponse().GetHeaders() {
					if h.GetHeader().GetKey() == authz.HeaderSub {
						sub = h.GetHeader().GetValue()
					}
				}
				assert.Equal(t, flag("--sub"), sub)
				return
			}
			assert.NotEqual(t, int32(codes.OK), resp.GetStatus().GetCode())
			assert.Equal(t, tc.status, resp.GetDeniedResponse().GetStatus().GetCode())
		})
	}
}

// TestPodmanComposeOverride checks the override `make compose-demo` uses:
// it only swaps in local images, of services the compose file has, that the
// Makefile builds.
func TestPodmanComposeOverride(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(composeDir, "podman-compose.override.yml"))
	require.NoError(t, err)
	var o struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&o), "the override sets images only: podman-compose 1.0.3 appends lists instead of replacing them")
	c := loadCompose(t)
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	var names []string
	for name, s := range o.Services {
		names = append(names, name)
		repo, tag, ok := strings.Cut(strings.TrimPrefix(s.Image, "localhost/"), ":")
		require.True(t, ok && strings.HasPrefix(s.Image, "localhost/"), "%s: %q is not a local image", name, s.Image)
		if tag == "local" {
			assert.Regexp(t, `-t localhost/(\$\$t|`+regexp.QuoteMeta(repo)+`):local`, string(mk), "%s: the Makefile builds %s", name, s.Image)
		} else {
			assert.Contains(t, string(mk), "-t localhost/"+repo+":$(ENVOY_VERSION)", name)
		}
	}
	var want []string
	for name := range c.Services {
		want = append(want, name)
	}
	assert.ElementsMatch(t, want, names, "every service runs a local image")
}
