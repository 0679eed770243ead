package resourceproxy

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// maxIDPResponse bounds what the proxy reads from any IDP response.
const maxIDPResponse = 4 << 20

// jwksCache holds the IDP's signing keys by kid. An unknown kid triggers a refresh, at
// most once per JWKSRefreshInterval, so random kids cannot make the proxy hammer the
// IDP.
type jwksCache struct {
	client *http.Client
	url    string
	now    func() time.Time

	keys atomic.Pointer[map[string]crypto.PublicKey]

	mu        sync.Mutex // serialises fetches
	lastFetch time.Time
}

func newJWKSCache(client *http.Client, url string, now func() time.Time) *jwksCache {
	c := &jwksCache{client: client, url: url, now: now}
	empty := map[string]crypto.PublicKey{}
	c.keys.Store(&empty)
	return c
}

// key returns the public key for kid, refreshing the set (rate-limited) when kid is
// unknown.
func (c *jwksCache) key(ctx context.Context, kid string) (crypto.PublicKey, bool) {
	if k, ok := (*c.keys.Load())[kid]; ok {
		return k, true
	}
	_ = c.refresh(ctx, false)
	k, ok := (*c.keys.Load())[kid]
	return k, ok
}

// refresh fetches the JWKS; unless force, at most once per JWKSRefreshInterval.
func (c *jwksCache) refresh(ctx context.Context, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !force && !c.lastFetch.IsZero() && now.Sub(c.lastFetch) < JWKSRefreshInterval {
		return nil
	}
	c.lastFetch = now
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys, err := fetchJWKS(ctx, c.client, c.url)
	if err != nil {
		return err
	}
	c.keys.Store(&keys)
	return nil
}

// fetchJWKS reads a JWK set and keeps the Ed25519 signature keys with a kid.
func fetchJWKS(ctx context.Context, client *http.Client, url string) (map[string]crypto.PublicKey, error) {
	body, err := getJSON(ctx, client, url, "", "")
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	out := map[string]crypto.PublicKey{}
	for _, raw := range set.Keys {
		jwk, pub, err := ajwt.ParseJWK(raw)
		if err != nil || jwk.Kid == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if _, ok := pub.(ed25519.PublicKey); !ok {
			continue // the IDP signs with EdDSA only
		}
		out[jwk.Kid] = pub
	}
	if len(out) == 0 {
		return nil, errors.New("jwks: no usable key")
	}
	return out, nil
}

// fetchIssuer reads the `issuer` of the IDP's RFC 8414 metadata.
func fetchIssuer(ctx context.Context, client *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := getJSON(ctx, client, url, "", "")
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	var md struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	if md.Issuer == "" {
		return "", errors.New("metadata: no issuer")
	}
	return md.Issuer, nil
}

// getJSON GETs url (with Basic credentials when user is set) and returns the body of a
// 200 response.
func getJSON(ctx context.Context, client *http.Client, url, user, secret string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(formEncode(user), formEncode(secret))
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxIDPResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxIDPResponse {
		return nil, errors.New("response too large")
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return body, nil
}
