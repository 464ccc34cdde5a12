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

// DiscoverEndpoint reads the issuer's metadata documents (DiscoveryURLs, in
// order) and returns the URL in member ("jwks_uri", "token_endpoint") of the
// first document that has it. The document's "issuer" must equal issuer
// exactly (OpenID Connect Discovery 4.3, RFC 8414 3.3), and the URL must
// pass CheckURL like a configured one.
func DiscoverEndpoint(ctx context.Context, client *http.Client, issuer, member string, allowInsecure bool) (string, error) {
	urls, err := DiscoveryURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		endpoint, err := readMetadata(ctx, client, u, issuer, member)
		if err == nil {
			if err := CheckURL(endpoint, allowInsecure); err != nil {
				return "", fmt.Errorf("discovered %s %s: %w", member, endpoint, err)
			}
			return endpoint, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return "", fmt.Errorf("discovery failed: %w", errors.Join(errs...))
}

// readMetadata fetches one metadata document and returns its member.
func readMetadata(ctx context.Context, client *http.Client, metadataURL, issuer, member string) (string, error) {
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
	body, err := ReadCapped(resp.Body, "metadata")
	if err != nil {
		return "", err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("invalid metadata JSON: %s", safeJSONError(err))
	}
	var docIssuer, endpoint string
	if err := json.Unmarshal(orNull(doc["issuer"]), &docIssuer); err != nil {
		return "", errors.New("invalid metadata JSON: issuer is not a string")
	}
	if docIssuer != issuer {
		return "", fmt.Errorf("metadata names issuer %q, not %q", docIssuer, issuer)
	}
	if err := json.Unmarshal(orNull(doc[member]), &endpoint); err != nil {
		return "", fmt.Errorf("invalid metadata JSON: %s is not a string", member)
	}
	if endpoint == "" {
		return "", fmt.Errorf("metadata has no %s", member)
	}
	return endpoint, nil
}

// orNull reads a missing member as JSON null.
func orNull(m json.RawMessage) json.RawMessage {
	if m == nil {
		return json.RawMessage("null")
	}
	return m
}
