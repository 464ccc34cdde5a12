package extauthz

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestDynamicMetadataWire sends every fixture's answer through the
// protobuf wire form: the metadata values share one allocation, and each
// field must still carry its own value to Envoy.
func TestDynamicMetadataWire(t *testing.T) {
	p, tokens := testPolicy(t)
	svc := newService(p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			f, req := loadFixture(t, path, tokens)
			resp, err := svc.Check(context.Background(), req)
			require.NoError(t, err)
			b, err := proto.Marshal(resp)
			require.NoError(t, err)
			var got authv3.CheckResponse
			require.NoError(t, proto.Unmarshal(b, &got))
			fields := got.GetDynamicMetadata().GetFields()
			assert.Equal(t, len(resp.GetDynamicMetadata().GetFields()), len(fields))
			for k, v := range f.Want.Metadata {
				assert.Equal(t, v, fields[k].GetStringValue(), "dynamic metadata %s", k)
			}
			for k, v := range resp.GetDynamicMetadata().GetFields() {
				assert.Equal(t, v.GetStringValue(), fields[k].GetStringValue(), "dynamic metadata %s", k)
				assert.NotEmpty(t, fields[k].GetStringValue(), "dynamic metadata %s", k)
			}
		})
	}
}
