package keycloak

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realmDoc is the part of realm.json the tests rely on.
type realmDoc struct {
	Realm        string `json:"realm"`
	ClientScopes []struct {
		Name            string            `json:"name"`
		Attributes      map[string]string `json:"attributes"`
		ProtocolMappers []struct {
			ProtocolMapper string            `json:"protocolMapper"`
			Config         map[string]string `json:"config"`
		} `json:"protocolMappers"`
	} `json:"clientScopes"`
	Clients []struct {
		ClientID               string            `json:"clientId"`
		Secret                 string            `json:"secret"`
		PublicClient           bool              `json:"publicClient"`
		ServiceAccountsEnabled bool              `json:"serviceAccountsEnabled"`
		Attributes             map[string]string `json:"attributes"`
		DefaultClientScopes    []string          `json:"defaultClientScopes"`
		OptionalClientScopes   []string          `json:"optionalClientScopes"`
	} `json:"clients"`
}

// TestRealmJSON pins what the end-to-end tests assume of realm.json.
func TestRealmJSON(t *testing.T) {
	var r realmDoc
	require.NoError(t, json.Unmarshal(RealmJSON, &r))
	assert.Equal(t, Realm, r.Realm)

	scopes := map[string]map[string]string{}
	audiences := map[string]string{}
	for _, s := range r.ClientScopes {
		scopes[s.Name] = s.Attributes
		for _, m := range s.ProtocolMappers {
			if m.ProtocolMapper == "oidc-audience-mapper" {
				assert.Equal(t, "true", m.Config["access.token.claim"], s.Name)
				assert.Equal(t, "true", m.Config["introspection.token.claim"], s.Name)
				audiences[m.Config["included.custom.audience"]+m.Config["included.client.audience"]] = s.Name
			}
		}
	}
	for _, s := range []string{"mcp:read", "mcp:write", "mcp:admin"} {
		require.Contains(t, scopes, s)
		assert.Equal(t, "true", scopes[s]["include.in.token.scope"], s)
	}
	assert.Equal(t, "mcp-audience", audiences[Audience], "the MCP resource audience mapper")
	assert.Equal(t, "mcp-audience", audiences[IntrospectionClient], "introspection needs tokengate in aud")

	clients := map[string]int{}
	for i, c := range r.Clients {
		clients[c.ClientID] = i
	}
	tests := []struct {
		id, secret, attr  string
		serviceAccount    bool
		defaults, options []string
	}{
		{id: AgentClient, secret: AgentSecret, serviceAccount: true,
			defaults: []string{"basic", "mcp-audience", "mcp:read"}, options: []string{"mcp:write", "mcp:admin"}},
		{id: IntrospectionClient, secret: IntrospectionSecret},
		{id: ExchangeClient, secret: ExchangeSecret, serviceAccount: true, attr: "standard.token.exchange.enabled"},
		{id: BackendClient, secret: "mcp-backend-secret"},
		{id: DPoPClient, secret: DPoPSecret, serviceAccount: true, attr: "dpop.bound.access.tokens",
			defaults: []string{"basic", "mcp-audience", "mcp:read"}, options: []string{"mcp:write", "mcp:admin"}},
	}
	for _, tc := range tests {
		i, ok := clients[tc.id]
		require.True(t, ok, tc.id)
		c := r.Clients[i]
		assert.False(t, c.PublicClient, tc.id)
		assert.Equal(t, tc.secret, c.Secret, tc.id)
		assert.Equal(t, tc.serviceAccount, c.ServiceAccountsEnabled, tc.id)
		if tc.attr != "" {
			assert.Equal(t, "true", c.Attributes[tc.attr], tc.id)
		}
		if tc.defaults != nil {
			assert.Equal(t, tc.defaults, c.DefaultClientScopes, tc.id)
			assert.Equal(t, tc.options, c.OptionalClientScopes, tc.id)
		}
	}
}

func TestHomeMissing(t *testing.T) {
	t.Setenv("KEYCLOAK_HOME", t.TempDir())
	_, err := Home()
	assert.True(t, errors.Is(err, ErrNotInstalled), "%v", err)
	assert.Contains(t, err.Error(), "make keycloak")
}
