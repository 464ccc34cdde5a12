package keycloak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Token asks the realm's token endpoint for a client-credentials access
// token of clientID. scopes, if any, are sent as the scope parameter (the
// client's default scopes are always granted; optional ones only if asked).
func (s *Server) Token(ctx context.Context, clientID, secret string, scopes ...string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.form(ctx, s.Endpoint("token"), clientID, secret, form, http.StatusOK, &out); err != nil {
		return "", fmt.Errorf("keycloak: client-credentials token for %s: %w", clientID, err)
	}
	if out.AccessToken == "" {
		return "", errors.New("keycloak: token response without access_token")
	}
	return out.AccessToken, nil
}

// AgentToken is a client-credentials token of AgentClient with scopes.
func (s *Server) AgentToken(ctx context.Context, scopes ...string) (string, error) {
	return s.Token(ctx, AgentClient, AgentSecret, scopes...)
}

// Revoke revokes token through the realm's revocation endpoint (RFC 7009),
// authenticated as the client it was issued to.
func (s *Server) Revoke(ctx context.Context, clientID, secret, token string) error {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if err := s.form(ctx, s.Endpoint("revoke"), clientID, secret, form, http.StatusOK, nil); err != nil {
		return fmt.Errorf("keycloak: revoking a token: %w", err)
	}
	return nil
}

// form posts a client-authenticated form and decodes the JSON answer.
func (s *Server) form(ctx context.Context, endpoint, clientID, secret string, form url.Values, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return s.do(req, want, out)
}

func (s *Server) do(req *http.Request, want int, out any) error {
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %.300s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// adminToken logs in to the master realm as the bootstrap admin.
func (s *Server) adminToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {adminUser}, "password": {adminPassword},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		s.URL()+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.do(req, http.StatusOK, &out); err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	return out.AccessToken, nil
}

// admin calls the admin REST API at path (below /admin/realms) with an
// optional JSON body and decodes the JSON answer into out.
func (s *Server) admin(ctx context.Context, method, path string, in any, want int, out any) error {
	tok, err := s.adminToken(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+"/admin/realms"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return s.do(req, want, out)
}

// importRealm creates the realm of realm.json unless it exists (a restart
// keeps its data).
func (s *Server) importRealm(ctx context.Context) error {
	if err := s.admin(ctx, http.MethodGet, "/"+Realm, nil, http.StatusOK, nil); err == nil {
		return nil
	}
	return s.admin(ctx, http.MethodPost, "", json.RawMessage(RealmJSON), http.StatusCreated, nil)
}

// Key is one of the realm's keys, as the admin API lists them.
type Key struct {
	Kid        string `json:"kid"`
	Algorithm  string `json:"algorithm"`
	Use        string `json:"use"`
	Status     string `json:"status"` // ACTIVE, PASSIVE or DISABLED
	ProviderID string `json:"providerId"`
	Priority   int    `json:"providerPriority"`
}

// Keys lists the realm's keys.
func (s *Server) Keys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	if err := s.admin(ctx, http.MethodGet, "/"+Realm+"/keys", nil, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("keycloak: listing keys: %w", err)
	}
	return out.Keys, nil
}

// SigningKey is the RS256 key the realm signs new tokens with: the active
// one of the highest priority.
func (s *Server) SigningKey(ctx context.Context) (Key, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return Key{}, err
	}
	var best *Key
	for i, k := range keys {
		if k.Algorithm == "RS256" && k.Use == "SIG" && k.Status == "ACTIVE" && (best == nil || k.Priority > best.Priority) {
			best = &keys[i]
		}
	}
	if best == nil {
		return Key{}, errors.New("keycloak: no active RS256 key")
	}
	return *best, nil
}

// PublishedKids lists the key ids of the realm's public JWKS (the certs
// endpoint), the keys a relying party can verify with.
func (s *Server) PublishedKids(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint("certs"), nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := s.do(req, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("keycloak: reading the JWKS: %w", err)
	}
	var kids []string
	for _, k := range out.Keys {
		kids = append(kids, k.Kid)
	}
	return kids, nil
}

// component is a key provider in the admin API.
type component struct {
	ID           string              `json:"id,omitempty"`
	Name         string              `json:"name"`
	ProviderID   string              `json:"providerId"`
	ProviderType string              `json:"providerType"`
	ParentID     string              `json:"parentId"`
	Config       map[string][]string `json:"config"`
}

// AddRSAKey adds an rsa-generated key provider named name (RS256, 2048
// bits, active) with the given priority and returns its provider id. A
// higher priority than the current key's makes it the signing key.
func (s *Server) AddRSAKey(ctx context.Context, name string, priority int) (string, error) {
	var realm struct {
		ID string `json:"id"`
	}
	if err := s.admin(ctx, http.MethodGet, "/"+Realm, nil, http.StatusOK, &realm); err != nil {
		return "", err
	}
	c := component{
		Name: name, ProviderID: "rsa-generated", ProviderType: "org.keycloak.keys.KeyProvider", ParentID: realm.ID,
		Config: map[string][]string{
			"priority": {strconv.Itoa(priority)}, "keySize": {"2048"}, "algorithm": {"RS256"},
			"active": {"true"}, "enabled": {"true"},
		},
	}
	if err := s.admin(ctx, http.MethodPost, "/"+Realm+"/components", c, http.StatusCreated, nil); err != nil {
		return "", fmt.Errorf("keycloak: adding key provider %s: %w", name, err)
	}
	var found []component
	if err := s.admin(ctx, http.MethodGet, "/"+Realm+"/components?type=org.keycloak.keys.KeyProvider&name="+url.QueryEscape(name),
		nil, http.StatusOK, &found); err != nil {
		return "", err
	}
	if len(found) != 1 {
		return "", fmt.Errorf("keycloak: %d key providers named %s", len(found), name)
	}
	return found[0].ID, nil
}

// SetKeyActive makes the key provider's key active (it signs, if its
// priority is the highest) or passive (it only verifies: it stays in the
// JWKS).
func (s *Server) SetKeyActive(ctx context.Context, providerID string, active bool) error {
	return s.setKeyConfig(ctx, providerID, "active", active)
}

// SetKeyEnabled enables or disables the key provider; a disabled key
// leaves the JWKS.
func (s *Server) SetKeyEnabled(ctx context.Context, providerID string, enabled bool) error {
	return s.setKeyConfig(ctx, providerID, "enabled", enabled)
}

func (s *Server) setKeyConfig(ctx context.Context, providerID, key string, on bool) error {
	var c component
	if err := s.admin(ctx, http.MethodGet, "/"+Realm+"/components/"+url.PathEscape(providerID), nil, http.StatusOK, &c); err != nil {
		return fmt.Errorf("keycloak: reading key provider: %w", err)
	}
	c.Config[key] = []string{strconv.FormatBool(on)}
	if err := s.admin(ctx, http.MethodPut, "/"+Realm+"/components/"+url.PathEscape(providerID), c, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("keycloak: setting %s=%t on a key provider: %w", key, on, err)
	}
	return nil
}
