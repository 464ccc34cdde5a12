package repocheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tokengate/tokengate/authz"
	"github.com/tokengate/tokengate/config"
)

// Kubernetes manifests.

const k8sDir = repoRoot + "/deploy/kubernetes"

// decodeStrict decodes a single-document YAML manifest into its API type,
// rejecting every field the type does not have.
func decodeStrict(b []byte, into any) error {
	if bytes.Contains(b, []byte("\n---")) {
		return errors.New("more than one YAML document")
	}
	j, err := sigsyaml.YAMLToJSON(b)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// k8sManifests are the decoded Kubernetes manifests.
type k8sManifests struct {
	namespace  corev1.Namespace
	configMap  corev1.ConfigMap
	secret     corev1.Secret
	deployment appsv1.Deployment
	service    corev1.Service
	headless   corev1.Service
	hpa        autoscalingv2.HorizontalPodAutoscaler
	pdb        policyv1.PodDisruptionBudget
}

// files maps each manifest file to its destination and expected type.
func (m *k8sManifests) files() []struct {
	file, apiVersion, kind string
	obj                    any
	meta                   *metav1.ObjectMeta
} {
	type entry = struct {
		file, apiVersion, kind string
		obj                    any
		meta                   *metav1.ObjectMeta
	}
	return []entry{
		{"namespace.yaml", "v1", "Namespace", &m.namespace, &m.namespace.ObjectMeta},
		{"configmap.yaml", "v1", "ConfigMap", &m.configMap, &m.configMap.ObjectMeta},
		{"secret.yaml", "v1", "Secret", &m.secret, &m.secret.ObjectMeta},
		{"deployment.yaml", "apps/v1", "Deployment", &m.deployment, &m.deployment.ObjectMeta},
		{"service.yaml", "v1", "Service", &m.service, &m.service.ObjectMeta},
		{"service-headless.yaml", "v1", "Service", &m.headless, &m.headless.ObjectMeta},
		{"hpa.yaml", "autoscaling/v2", "HorizontalPodAutoscaler", &m.hpa, &m.hpa.ObjectMeta},
		{"pdb.yaml", "policy/v1", "PodDisruptionBudget", &m.pdb, &m.pdb.ObjectMeta},
	}
}

// typeMeta reads apiVersion and kind of any decoded API object: every one
// embeds metav1.TypeMeta, which is its own ObjectKind.
func typeMeta(obj any) metav1.TypeMeta {
	if o, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		if tm, ok := o.GetObjectKind().(*metav1.TypeMeta); ok {
			return *tm
		}
	}
	return metav1.TypeMeta{}
}

func loadK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{}
	for _, f := range m.files() {
		b, err := os.ReadFile(filepath.Join(k8sDir, f.file))
		require.NoError(t, err)
		require.NoError(t, decodeStrict(b, f.obj), "%s", f.file)
		tm := typeMeta(f.obj)
		require.Equal(t, f.apiVersion, tm.APIVersion, "%s apiVersion", f.file)
		require.Equal(t, f.kind, tm.Kind, "%s kind", f.file)
		require.NotEmpty(t, f.meta.Name, "%s metadata.name", f.file)
	}
	return m
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := loadK8s(t)
	ns := m.namespace.Name
	for _, f := range m.files() {
		if f.kind == "Namespace" {
			continue
		}
		assert.Equal(t, ns, f.meta.Namespace, "%s: every object lives in the namespace of namespace.yaml", f.file)
	}
	assert.Equal(t, "restricted", m.namespace.Labels["pod-security.kubernetes.io/enforce"])
}

// TestDecodeStrictRejectsUnknownFields shows the strict decoding above
// catches the mistakes a lenient kubectl apply could hide.
func TestDecodeStrictRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name, doc string
		obj       any
		want      string
	}{
		{"misspelled top-level field", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n",
			&appsv1.Deployment{}, `unknown field "replica"`},
		{"misplaced securityContext field", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      securityContext:\n        readOnlyRootFilesystem: true\n",
			&appsv1.Deployment{}, `unknown field "readOnlyRootFilesystem"`},
		{"wrong type", "apiVersion: v1\nkind: Service\nspec:\n  ports:\n  - port: http\n",
			&corev1.Service{}, "cannot unmarshal string"},
		{"two documents", "apiVersion: v1\nkind: Secret\n---\napiVersion: v1\nkind: Secret\n",
			&corev1.Secret{}, "more than one YAML document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeStrict([]byte(tc.doc), tc.obj)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName,omitempty"`
			NewTag  string `json:"newTag,omitempty"`
		} `json:"images"`
	}
	require.NoError(t, decodeStrict(b, &k))
	assert.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	assert.Equal(t, "Kustomization", k.Kind)

	entries, err := os.ReadDir(k8sDir)
	require.NoError(t, err)
	var manifests []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
			manifests = append(manifests, e.Name())
		}
	}
	assert.ElementsMatch(t, manifests, k.Resources)
	m := &k8sManifests{}
	var typed []string
	for _, f := range m.files() {
		typed = append(typed, f.file)
	}
	assert.ElementsMatch(t, manifests, typed, "every manifest must be decoded by TestKubernetesManifestsDecodeStrictly")

	m = loadK8s(t)
	image := m.deployment.Spec.Template.Spec.Containers[0].Image
	require.Len(t, k.Images, 1)
	assert.Equal(t, k.Images[0].Name, strings.SplitN(image, ":", 2)[0], "kustomization images[].name must match the Deployment's image")
}

// containerPort resolves a probe's or Service's port (number or name)
// against the container's ports.
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// tokengateContainer returns the Deployment's tokengate container.
func tokengateContainer(t *testing.T, d appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	require.Len(t, cs, 1)
	return cs[0]
}

func TestDeploymentPortsProbesAndServices(t *testing.T) {
	m := loadK8s(t)
	d := m.deployment
	c := tokengateContainer(t, d)

	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	podLabels := labels.Set(d.Spec.Template.Labels)
	require.True(t, sel.Matches(podLabels), "the Deployment's selector must select its own pods")

	byName := map[string]int32{}
	for _, p := range c.Ports {
		byName[p.Name] = p.ContainerPort
	}
	assert.Equal(t, map[string]int32{"grpc": defaultGRPCPort, "http": defaultHTTPPort}, byName)

	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		require.NotNil(t, p.probe, p.name)
		require.NotNil(t, p.probe.HTTPGet, p.name)
		assert.Equal(t, p.path, p.probe.HTTPGet.Path, p.name)
		port, ok := containerPort(c, p.probe.HTTPGet.Port)
		require.True(t, ok, "%s probe port %s is not a container port", p.name, p.probe.HTTPGet.Port.String())
		assert.Equal(t, int32(defaultHTTPPort), port, p.name)
	}

	services := []struct {
		svc   corev1.Service
		ports map[string]int32 // Service port name -> port
	}{
		{m.service, map[string]int32{"grpc": defaultGRPCPort, "http": defaultHTTPPort}},
		{m.headless, map[string]int32{"grpc": defaultGRPCPort}},
	}
	for _, s := range services {
		name := s.svc.Name
		assert.True(t, labels.SelectorFromSet(s.svc.Spec.Selector).Matches(podLabels), "%s selects the tokengate pods", name)
		got := map[string]int32{}
		for _, sp := range s.svc.Spec.Ports {
			got[sp.Name] = sp.Port
			target, ok := containerPort(c, sp.TargetPort)
			require.True(t, ok, "%s port %s: targetPort %s is not a container port", name, sp.Name, sp.TargetPort.String())
			assert.Equal(t, sp.Port, target, "%s port %s: targetPort", name, sp.Name)
			require.NotNil(t, sp.AppProtocol, "%s port %s: appProtocol", name, sp.Name)
			assert.Equal(t, sp.Name, *sp.AppProtocol, "%s port %s: appProtocol", name, sp.Name)
		}
		assert.Equal(t, s.ports, got, name)
	}
	assert.Equal(t, corev1.ClusterIPNone, m.headless.Spec.ClusterIP)
}

// effectiveArgs is the container's argv as the runtime builds it from the
// container spec and the image's ENTRYPOINT and CMD.
func effectiveArgs(c corev1.Container, d dockerfile) []string {
	if len(c.Command) > 0 {
		return append(slices.Clone(c.Command), c.Args...)
	}
	args := d.cmd
	if len(c.Args) > 0 {
		args = c.Args
	}
	return append(slices.Clone(d.entrypoint), args...)
}

// environFor resolves the container's environment (literal values and
// Secret references) against the shipped Secret.
func environFor(t *testing.T, c corev1.Container, secret corev1.Secret) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.Equal(t, secret.Name, ref.Name, "env %s refers to an unknown Secret", e.Name)
			v, ok := secret.StringData[ref.Key]
			if !ok {
				b, found := secret.Data[ref.Key]
				require.True(t, found, "env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
				v = string(b)
			}
			env = append(env, e.Name+"="+v)
		case e.ValueFrom.ResourceFieldRef != nil || e.ValueFrom.FieldRef != nil:
			// Filled in by the kubelet; not configuration.
		default:
			t.Fatalf("env %s: unsupported valueFrom", e.Name)
		}
	}
	return env
}

// lookupIn is BuildOptions.LookupEnv over an environ slice.
func lookupIn(environ []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}

// buildConfig loads a configuration file's text the way tokengate serve
// does (config.Load, then authz.Build).
func buildConfig(t *testing.T, yamlText string, environ []string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokengate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yamlText), 0o600))
	cfg, err := config.Load(path, environ)
	if err != nil {
		return nil, err
	}
	_, err = authz.Build(cfg, authz.BuildOptions{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		LookupEnv: lookupIn(environ),
	})
	return cfg, err
}

func TestDeploymentConfigFromConfigMap(t *testing.T) {
	m := loadK8s(t)
	c := tokengateContainer(t, m.deployment)
	pod := m.deployment.Spec.Template.Spec

	// The --config path is inside a mount of the ConfigMap, under its key.
	args := effectiveArgs(c, loadDockerfile(t))
	cfgPath, ok := flagValue(args, "--config")
	require.True(t, ok, "tokengate's argv %q has no --config", args)
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if filepath.Dir(cfgPath) == vm.MountPath {
			mount = &c.VolumeMounts[i]
		}
	}
	require.NotNil(t, mount, "no volume is mounted at %s", filepath.Dir(cfgPath))
	assert.True(t, mount.ReadOnly)
	// A subPath mount never sees ConfigMap updates; the directory mount lets
	// tokengate's file watcher reload the configuration.
	assert.Empty(t, mount.SubPath)
	var vol *corev1.Volume
	for i, v := range pod.Volumes {
		if v.Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	require.NotNil(t, vol, "volume %s", mount.Name)
	require.NotNil(t, vol.ConfigMap, "volume %s must be the ConfigMap", mount.Name)
	assert.Equal(t, m.configMap.Name, vol.ConfigMap.Name)
	assert.Empty(t, vol.ConfigMap.Items, "the whole ConfigMap is mounted")
	text, ok := m.configMap.Data[filepath.Base(cfgPath)]
	require.True(t, ok, "ConfigMap %s has no key %s", m.configMap.Name, filepath.Base(cfgPath))

	// It is a valid configuration once the Secret supplies the client secret.
	environ := environFor(t, c, m.secret)
	cfg, err := buildConfig(t, text, environ)
	require.NoError(t, err)

	assert.Equal(t, ":"+strconv.Itoa(defaultGRPCPort), cfg.Server.GRPCListen)
	assert.Equal(t, ":"+strconv.Itoa(defaultHTTPPort), cfg.Server.HTTPListen)
	var discovered, introspection []string
	for name, v := range cfg.Verifiers {
		switch {
		case v.Type == config.TypeJWT && v.JWKSURI == "" && v.PublicKey == "" && v.PublicKeyFile == "" && v.JWKSFile == "":
			discovered = append(discovered, name)
		case v.Type == config.TypeIntrospection:
			introspection = append(introspection, name)
		}
	}
	assert.NotEmpty(t, discovered, "a jwt verifier discovering its JWKS from the issuer")
	require.Len(t, introspection, 1)
	for _, r := range cfg.Routes {
		assert.NotEmpty(t, r.Resource, "route %s has a resource", r.Name)
	}

	// The Secret's env variable is the introspection verifier's client
	// secret: without it the configuration does not build.
	secretVar := "TOKENGATE_VERIFIERS__" + strings.ToUpper(introspection[0]) + "__CLIENT_SECRET"
	assert.Contains(t, strings.Join(environ, "\n"), secretVar+"=")
	var without []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, secretVar+"=") {
			without = append(without, kv)
		}
	}
	_, err = buildConfig(t, text, without)
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	var paths []string
	for _, p := range cerr.Problems {
		paths = append(paths, p.Path)
	}
	assert.Equal(t, []string{"verifiers." + introspection[0] + ".client_secret"}, paths)
}

func TestDeploymentHardening(t *testing.T) {
	m := loadK8s(t)
	pod := m.deployment.Spec.Template.Spec
	c := tokengateContainer(t, m.deployment)
	d := loadDockerfile(t)

	require.NotNil(t, pod.SecurityContext)
	psc := pod.SecurityContext
	require.NotNil(t, psc.RunAsNonRoot)
	assert.True(t, *psc.RunAsNonRoot)
	if _, err := strconv.Atoi(d.user); err != nil {
		// The kubelet refuses runAsNonRoot for a non-numeric image USER
		// unless runAsUser is given.
		require.NotNil(t, psc.RunAsUser, "the image's USER %q is not numeric: runAsUser is required", d.user)
	}
	if psc.RunAsUser != nil {
		assert.NotZero(t, *psc.RunAsUser)
	}
	require.NotNil(t, psc.SeccompProfile)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	require.NotNil(t, pod.AutomountServiceAccountToken)
	assert.False(t, *pod.AutomountServiceAccountToken)

	require.NotNil(t, c.SecurityContext)
	sc := c.SecurityContext
	require.NotNil(t, sc.AllowPrivilegeEscalation)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	require.NotNil(t, sc.ReadOnlyRootFilesystem)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	require.NotNil(t, sc.RunAsNonRoot)
	assert.True(t, *sc.RunAsNonRoot)
	if sc.Privileged != nil {
		assert.False(t, *sc.Privileged)
	}
	require.NotNil(t, sc.Capabilities)
	assert.Contains(t, sc.Capabilities.Drop, corev1.Capability("ALL"))
	assert.Empty(t, sc.Capabilities.Add)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, ok := c.Resources.Requests[r]
		require.True(t, ok, "requests.%s", r)
		lim, ok := c.Resources.Limits[r]
		require.True(t, ok, "limits.%s", r)
		assert.LessOrEqual(t, req.Cmp(lim), 0, "requests.%s <= limits.%s", r, r)
	}
	for _, v := range pod.Volumes {
		assert.Nil(t, v.HostPath, "volume %s: no hostPath", v.Name)
	}

	// GOMEMLIMIT, if set, is below the memory limit (a soft limit above the
	// hard one is useless).
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		soft, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		require.NoError(t, err, "GOMEMLIMIT=%s", e.Value)
		hard := c.Resources.Limits[corev1.ResourceMemory]
		assert.Negative(t, soft.Cmp(hard), "GOMEMLIMIT %s must be below limits.memory %s", e.Value, hard.String())
	}
}

func TestAutoscalingAndDisruptionBudget(t *testing.T) {
	m := loadK8s(t)
	d := m.deployment
	podLabels := labels.Set(d.Spec.Template.Labels)

	ref := m.hpa.Spec.ScaleTargetRef
	assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name}, ref)
	require.NotNil(t, m.hpa.Spec.MinReplicas)
	minReplicas := *m.hpa.Spec.MinReplicas
	assert.Equal(t, *d.Spec.Replicas, minReplicas, "the HPA starts where the Deployment does")
	assert.Greater(t, m.hpa.Spec.MaxReplicas, minReplicas)
	require.Len(t, m.hpa.Spec.Metrics, 1)
	metric := m.hpa.Spec.Metrics[0]
	require.Equal(t, autoscalingv2.ResourceMetricSourceType, metric.Type)
	require.NotNil(t, metric.Resource)
	assert.Equal(t, corev1.ResourceCPU, metric.Resource.Name)
	assert.Equal(t, autoscalingv2.UtilizationMetricType, metric.Resource.Target.Type)
	require.NotNil(t, metric.Resource.Target.AverageUtilization)
	assert.Greater(t, *metric.Resource.Target.AverageUtilization, int32(0))
	// Utilization is relative to the CPU request.
	_, ok := tokengateContainer(t, d).Resources.Requests[corev1.ResourceCPU]
	assert.True(t, ok, "CPU utilization needs a CPU request")

	sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels), "the PDB selects the Deployment's pods")
	require.NotNil(t, m.pdb.Spec.MinAvailable)
	assert.Equal(t, intstr.FromInt32(1), *m.pdb.Spec.MinAvailable)
	// Below the replica count, or a node drain could never evict a pod.
	assert.Less(t, m.pdb.Spec.MinAvailable.IntVal, minReplicas)
}

// ---------------------------------------------------------------------------
// Istio.

const istioDir = repoRoot + "/deploy/istio"

// loadUnstructured decodes a single-document YAML file into a generic map.
func loadUnstructured(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(b), "\n---", "%s: one document per file", path)
	var doc map[string]any
	require.NoError(t, sigsyaml.Unmarshal(b, &doc), path)
	return doc
}

// dig walks a generic document along keys (string) and indexes (int).
func dig(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			require.True(t, ok, "%v: not a map", path[:i])
			cur, ok = m[k]
			require.True(t, ok, "%v: missing", path[:i+1])
		case int:
			l, ok := cur.([]any)
			require.True(t, ok, "%v: not a list", path[:i])
			require.Greater(t, len(l), k, "%v: too short", path[:i])
			cur = l[k]
		}
	}
	return cur
}

func TestIstioWiring(t *testing.T) {
	m := loadK8s(t)
	mesh := loadUnstructured(t, filepath.Join(istioDir, "mesh-config.yaml"))
	policy := loadUnstructured(t, filepath.Join(istioDir, "authorization-policy.yaml"))

	assert.Equal(t, "install.istio.io/v1alpha1", mesh["apiVersion"])
	assert.Equal(t, "IstioOperator", mesh["kind"])
	providers, ok := dig(t, mesh, "spec", "meshConfig", "extensionProviders").([]any)
	require.True(t, ok)
	require.Len(t, providers, 1)
	provider := providers[0].(map[string]any)
	name, _ := provider["name"].(string)
	require.NotEmpty(t, name)
	grpc, ok := provider["envoyExtAuthzGrpc"].(map[string]any)
	require.True(t, ok, "the provider must be envoyExtAuthzGrpc")
	assert.Equal(t, m.service.Name+"."+m.service.Namespace+".svc.cluster.local", grpc["service"])
	assert.EqualValues(t, defaultGRPCPort, grpc["port"])
	assert.Equal(t, false, grpc["failOpen"], "fail closed")
	timeout, err := time.ParseDuration(grpc["timeout"].(string))
	require.NoError(t, err)
	assert.Positive(t, timeout)
	var grpcPort *corev1.ServicePort
	for i, p := range m.service.Spec.Ports {
		if p.Port == defaultGRPCPort {
			grpcPort = &m.service.Spec.Ports[i]
		}
	}
	require.NotNil(t, grpcPort, "the Service exposes the gRPC port the provider names")
	assert.Equal(t, "grpc", *grpcPort.AppProtocol, "Istio must see the port as gRPC")

	assert.Equal(t, "security.istio.io/v1", policy["apiVersion"])
	assert.Equal(t, "AuthorizationPolicy", policy["kind"])
	assert.Equal(t, "CUSTOM", dig(t, policy, "spec", "action"))
	assert.Equal(t, name, dig(t, policy, "spec", "provider", "name"), "the policy's provider is the mesh config's")
	selector, ok := dig(t, policy, "spec", "selector", "matchLabels").(map[string]any)
	require.True(t, ok)
	assert.NotEmpty(t, selector, "the policy selects the MCP workload by label")
	rules, ok := dig(t, policy, "spec", "rules").([]any)
	require.True(t, ok)
	assert.NotEmpty(t, rules, "a CUSTOM policy without rules sends nothing to tokengate")
	assert.NotEmpty(t, dig(t, policy, "metadata", "namespace"))
}
