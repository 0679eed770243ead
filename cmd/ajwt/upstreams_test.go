package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveUntil runs args until probe answers want, then cancels and expects exit 0.
func serveUntil(t *testing.T, args []string, probe func() (*http.Response, error), want int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := probe()
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("%s exited early with %d: %s", args[0], code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d: %v %s", args[0], want, err, stderr.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("%s exit %d: %s", args[0], code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not shut down", args[0])
	}
}

// TestForgeCommand: `ajwt forge --seed` serves the seeded repositories to a caller with
// the token and refuses one without.
func TestForgeCommand(t *testing.T) {
	t.Setenv("TEST_FORGE_TOKEN", "forge-token-for-test")
	if code, _, stderr := runCmd(t, "forge"); code != exitUsage || !strings.Contains(stderr, "--data is required") {
		t.Fatalf("no --data: %d %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "forge", "--data", t.TempDir(), "--token-env", "TEST_FORGE_TOKEN_UNSET"); code != exitError || !strings.Contains(stderr, "requires a token") {
		t.Fatalf("no token: %d %s", code, stderr)
	}
	addr := freePort(t)
	get := func(tok string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/repos/acme/webapp", nil)
		if tok != "" {
			req.Header.Set("Authorization", "token "+tok)
		}
		return http.DefaultClient.Do(req)
	}
	serveUntil(t, []string{"forge", "--addr", addr, "--data", t.TempDir(), "--seed", "--token-env", "TEST_FORGE_TOKEN"}, func() (*http.Response, error) {
		if res, err := get(""); err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("without a token: %d", res.StatusCode)
			}
		}
		return get("forge-token-for-test")
	}, http.StatusOK)
}

// TestOSVMirrorCommand: `ajwt osv-mirror` serves the records of a directory.
func TestOSVMirrorCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := `{"id":"GHSA-test-0001","modified":"2024-01-01T00:00:00Z","summary":"test record",
	"affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "GHSA-test-0001.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCmd(t, "osv-mirror", "--data", filepath.Join(dir, "missing")); code != exitError {
		t.Fatalf("missing data: %d", code)
	}
	addr := freePort(t)
	serveUntil(t, []string{"osv-mirror", "--addr", addr, "--data", dir}, func() (*http.Response, error) {
		res, err := http.Post("http://"+addr+"/v1/query", "application/json",
			strings.NewReader(`{"package":{"ecosystem":"npm","name":"left-pad"},"version":"1.2.0"}`))
		if err != nil || res.StatusCode != 200 {
			return res, err
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		b.Write(buf[:n])
		if !strings.Contains(b.String(), "GHSA-test-0001") {
			t.Errorf("query answer lacks the record: %s", b.String())
		}
		return res, nil
	}, http.StatusOK)
}
