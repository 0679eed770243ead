package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/idp"
)

// TestProxyCommand runs `ajwt proxy` against an in-process IDP: it comes up, refuses a
// request without credentials with the DPoP challenge, never logs its secret, and shuts
// down cleanly. Without a client secret it refuses to start.
func TestProxyCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := idp.RandomSecret()
	cf := &idp.ClientsFile{Clients: []idp.ClientConfig{{ClientID: "proxy", ClientSecret: secret, Role: idp.RoleResource}}}
	var h http.Handler = http.NotFoundHandler()
	its := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer its.Close()
	srv, err := idp.New(t.Context(), idp.Config{Issuer: its.URL, Store: idp.NewMemoryStore(), Clients: cf})
	if err != nil {
		t.Fatal(err)
	}
	h = srv.Handler()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer up.Close()

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "proxy", "--addr", "127.0.0.1:0", "--idp-url", its.URL, "--client-secret-file", empty,
		"--github-url", up.URL, "--github-token-env", "", "--osv-url", "")
	if code != exitError || !strings.Contains(stderr, "client secret") {
		t.Fatalf("without a secret: code %d, stderr %s", code, stderr)
	}
	if code, _, _ := runCmd(t, "proxy", "--mode", "nope", "--bogus"); code != exitUsage {
		t.Fatalf("bad flag: code %d", code)
	}

	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"proxy", "--addr", addr, "--public-url", "http://" + addr, "--idp-url", its.URL,
			"--client-secret-file", secretFile, "--github-url", up.URL, "--github-token-env", "", "--osv-url", ""}, &stdout, &errb)
	}()
	var res *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err = http.Get("http://" + addr + "/github/repos/acme/webapp")
		if err == nil && res.StatusCode == http.StatusUnauthorized {
			break
		}
		if err == nil {
			res.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy never answered 401: %v %s", err, errb.String())
		}
	}
	res.Body.Close()
	if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "DPoP ") || strings.Contains(ch, "error=") {
		t.Fatalf("challenge %q", ch)
	}
	if strings.Contains(errb.String(), secret) {
		t.Fatal("the client secret was logged")
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not shut down")
	}
}
