package repocheck

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// Tokengate's default ports (CONTRACT.md section 2).
const (
	defaultGRPCPort = 9191
	defaultHTTPPort = 9192
)
