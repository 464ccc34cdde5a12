package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DiscoveryURLs returns the metadata documents tried, in order, to find an
// issuer's jwks_uri: OpenID Connect Discovery
// (<issuer>/.well-known/openid-configuration), then RFC 8414
// (<origin>/.well-known/oauth-authorization-server<issuer path>).
func DiscoveryURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("issuer must be an absolute URL without query or fragment for discovery")
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	return []string{
		origin + path + "/.well-known/openid-configuration",
		origin + "/.well-known/oauth-authorization-server" + path,
	}, nil
}

// discoverJWKSURI reads the issuer's metadata and returns its jwks_uri.
// The document's "issuer" must equal the configured issuer exactly (OpenID
// Connect Discovery 4.3, RFC 8414 3.3), and the jwks_uri must pass the same
// https rule as a configured one.
func discoverJWKSURI(ctx context.Context, client *http.Client, issuer string, allowInsecure bool) (string, error) {
	urls, err := DiscoveryURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		jwksURI, err := readMetadata(ctx, client, u, issuer)
		if err == nil {
			if err := CheckURL(jwksURI, allowInsecure); err != nil {
				return "", fmt.Errorf("discovered jwks_uri %s: %w", jwksURI, err)
			}
			return jwksURI, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return "", fmt.Errorf("discovery failed: %w", errors.Join(errs...))
}

func readMetadata(ctx context.Context, client *http.Client, metadataURL, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answered %s", resp.Status)
	}
	body, err := readCapped(resp.Body, "metadata")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("invalid metadata JSON: %s", safeJSONError(err))
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("metadata names issuer %q, not %q", doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", errors.New("metadata has no jwks_uri")
	}
	return doc.JWKSURI, nil
}
