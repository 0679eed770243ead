package idp

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// MaxClientsFileBytes bounds the clients file.
const MaxClientsFileBytes = 1 << 20

// pbkdf2Iterations is the work factor of stored client-secret hashes. Verified secrets
// are remembered (as a SHA-256) so the token endpoint pays it once per process.
const pbkdf2Iterations = 100_000

// ClientConfig is one entry of the clients file (`--clients`), with its plain secret.
type ClientConfig struct {
	ClientID      string              `json:"client_id"`
	ClientSecret  string              `json:"client_secret"`
	Role          string              `json:"role"`
	AllowedParams map[string][]string `json:"allowed_params,omitempty"`
}

// ClientsFile is the JSON layout of the clients file.
type ClientsFile struct {
	Clients []ClientConfig `json:"clients"`
}

// LoadClientsFile reads and validates a clients file.
func LoadClientsFile(path string) (*ClientsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxClientsFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	if len(b) > MaxClientsFileBytes {
		return nil, fmt.Errorf("clients file %s exceeds %d bytes", path, MaxClientsFileBytes)
	}
	var cf ClientsFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("clients file %s: %w", path, err)
	}
	return &cf, cf.Validate()
}

// Validate checks ids, roles and secret strength.
func (cf *ClientsFile) Validate() error {
	seen := map[string]bool{}
	for _, c := range cf.Clients {
		if c.ClientID == "" || len(c.ClientID) > 128 || strings.ContainsAny(c.ClientID, ":\x00") {
			return fmt.Errorf("clients: bad client_id %q", c.ClientID)
		}
		if seen[c.ClientID] {
			return fmt.Errorf("clients: %q listed twice", c.ClientID)
		}
		seen[c.ClientID] = true
		switch c.Role {
		case RoleAdmin, RoleApprover, RoleApp, RoleResource:
		default:
			return fmt.Errorf("clients: %q has unknown role %q", c.ClientID, c.Role)
		}
		if len(c.ClientSecret) < 16 {
			return fmt.Errorf("clients: %q: secret shorter than 16 characters", c.ClientID)
		}
		if len(c.AllowedParams) > 0 && c.Role != RoleApp {
			return fmt.Errorf("clients: %q: allowed_params is only for app clients", c.ClientID)
		}
	}
	return nil
}

// GenerateClientsFile makes the four default clients with random secrets and writes
// them to path with mode 0600. The secrets are never logged.
func GenerateClientsFile(path string) (*ClientsFile, error) {
	cf := &ClientsFile{}
	for _, c := range [][2]string{{"admin", RoleAdmin}, {"patchbot", RoleApp}, {"proxy", RoleResource}, {"reviewer", RoleApprover}} {
		cf.Clients = append(cf.Clients, ClientConfig{ClientID: c[0], ClientSecret: RandomSecret(), Role: c[1]})
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return nil, fmt.Errorf("clients file: %w", err)
	}
	return cf, f.Close()
}

// RandomSecret returns 256 random bits, base64url-encoded.
func RandomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns a PBKDF2-SHA256 hash "pbkdf2-sha256$iter$salt$hash".
func HashSecret(secret string) (string, error) {
	var salt [16]byte
	_, _ = rand.Read(salt[:])
	dk, err := pbkdf2.Key(sha256.New, secret, salt[:], pbkdf2Iterations, 32)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, enc.EncodeToString(salt[:]), enc.EncodeToString(dk)), nil
}

func verifySecretHash(hash, secret string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	dk, err := pbkdf2.Key(sha256.New, secret, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(dk, want) == 1
}

// secretCache remembers, per client, the SHA-256 of the last secret that verified
// against the stored PBKDF2 hash, so repeated authentication is cheap.
type secretCache struct {
	mu sync.Mutex
	ok map[string][32]byte
}

func (sc *secretCache) verify(c *Client, secret string) bool {
	sum := sha256.Sum256([]byte(c.SecretHash + "\x00" + secret))
	sc.mu.Lock()
	cached, hit := sc.ok[c.ClientID]
	sc.mu.Unlock()
	if hit && subtle.ConstantTimeCompare(cached[:], sum[:]) == 1 {
		return true
	}
	if !verifySecretHash(c.SecretHash, secret) {
		return false
	}
	sc.mu.Lock()
	if sc.ok == nil {
		sc.ok = map[string][32]byte{}
	}
	sc.ok[c.ClientID] = sum
	sc.mu.Unlock()
	return true
}
