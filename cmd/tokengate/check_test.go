package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckFixtures: for each testdata/check file, "config check" and
// "serve" exit 1 and print exactly the file's "# want:" lines (FILE stands
// for the file's path), validation and build problems together in one run.
func TestCheckFixtures(t *testing.T) {
	t.Setenv("TOKENGATE_CONFIG", "")
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var want []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
				want = append(want, strings.Replace(w, "FILE", file, 1))
			}
		}
		require.NotEmpty(t, want, "%s has no # want: line", file)
		for _, cmd := range [][]string{{"config", "check", "--config", file}, {"serve", "--config", file}} {
			t.Run(filepath.Base(file)+"/"+cmd[0], func(t *testing.T) {
				code, stdout, stderr := runMain(cmd...)
				assert.Equal(t, exitInvalid, code, "stderr: %s", stderr)
				assert.Empty(t, stdout)
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				require.NotEmpty(t, lines)
				assert.Equal(t, "tokengate "+cmd[0]+map[string]string{"config": " check", "serve": ""}[cmd[0]]+
					": invalid configuration in "+file+":", lines[0])
				assert.Equal(t, want, lines[1:])
			})
		}
	}
}
