// Package repocheck holds repository-wide checks and nothing else: its
// tests read the files the project ships (every Envoy configuration, run
// through `envoy --mode validate`; the Dockerfile; the Compose stack; the
// Kubernetes and Istio manifests under deploy/) and check them against each
// other and against tokengate's own configuration loader.
package repocheck
