package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentic-jwt/patchcrew/idp"
)

// Tests that set AJWT_* variables (t.Setenv) run sequentially; the parallel ones run
// after all of them, so they see the unmodified environment.

// runCmd runs the CLI and returns its exit status, stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCmd(t, "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.Contains(stderr, "usage: ajwt") {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCmd(t); code != exitUsage {
		t.Fatalf("no command: code %d, want 2", code)
	}
}

func TestBadFlag(t *testing.T) {
	for _, args := range [][]string{
		{"idp", "--no-such-flag"},
		{"idp", "--token-ttl", "soon"},
		{"idp", "--tls-cert", "c.pem"},
		{"idp", "stray"},
		{"register", "agent", "--bogus"},
		{"register", "gadget", "-f", "x.json"},
		{"register", "agent"},
		{"shim-checksum", "-x"},
		{"audit", "verify", "--nope"},
		{"audit"},
		{"demo", "--nope"},
		{"idp", "rotate-key", "--nope"},
	} {
		code, stdout, stderr := runCmd(t, args...)
		if code != exitUsage {
			t.Errorf("%q: code %d, want 2 (stderr %q)", args, code, stderr)
		}
		if !regexp.MustCompile(`(?m)^usage: ajwt `).MatchString(stderr) {
			t.Errorf("%q: no usage line on stderr: %q", args, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q, want empty", args, stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"idp", "--help"}, {"idp", "-h"}, {"idp", "rotate-key", "-h"},
		{"register", "--help"}, {"register", "agent", "-h"},
		{"shim-checksum", "-h"}, {"audit", "verify", "-h"}, {"audit", "-h"}, {"demo", "--help"},
	} {
		code, stdout, stderr := runCmd(t, args...)
		if code != exitOK || !strings.Contains(stdout, "usage: ajwt") || stderr != "" {
			t.Errorf("%q: code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	_, stdout, _ := runCmd(t, "idp", "-h")
	for _, want := range []string{"-token-ttl", "-baseline", "-tls-cert", "AJWT_<FLAG>"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("idp -h lacks %q:\n%s", want, stdout)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"token-ttl": "AJWT_TOKEN_TTL", "addr": "AJWT_ADDR", "admin-secret-file": "AJWT_ADMIN_SECRET_FILE", "f": "AJWT_F"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("listen-addr", ":1", "")
	on := fs.Bool("baseline", false, "")
	env := map[string]string{"AJWT_LISTEN_ADDR": ":2", "AJWT_BASELINE": "true", "LISTEN_ADDR": ":3"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := applyEnv(fs, lookup); err != nil {
		t.Fatal(err)
	}
	if *addr != ":2" || !*on {
		t.Fatalf("addr %q baseline %v", *addr, *on)
	}
	if err := fs.Parse([]string{"--listen-addr", ":4"}); err != nil || *addr != ":4" {
		t.Fatalf("flag must win over env: %q %v", *addr, err)
	}
	env["AJWT_BASELINE"] = "maybe"
	if err := applyEnv(fs, lookup); err == nil || !strings.Contains(err.Error(), "AJWT_BASELINE") {
		t.Fatalf("bad env value: err %v", err)
	}
}

func TestEnvOverride(t *testing.T) {
	t.Setenv("AJWT_TOKEN_TTL", "5s")
	t.Setenv("AJWT_BASELINE", "true")
	o, code, ok := parseIDPFlags(nil, io.Discard, io.Discard)
	if !ok || code != exitOK {
		t.Fatalf("parse: code %d", code)
	}
	if o.tokenTTL != 5*time.Second || !o.baseline {
		t.Fatalf("token-ttl %v baseline %v, want 5s true from the environment", o.tokenTTL, o.baseline)
	}
	if o.issuer != "http://localhost:8081" {
		t.Fatalf("derived issuer %q", o.issuer)
	}
	o, _, ok = parseIDPFlags([]string{"--token-ttl", "7s"}, io.Discard, io.Discard)
	if !ok || o.tokenTTL != 7*time.Second {
		t.Fatalf("the flag must win over AJWT_TOKEN_TTL: %+v", o)
	}

	t.Setenv("AJWT_TOKEN_TTL", "soon")
	code, _, stderr := runCmd(t, "idp")
	if code != exitUsage || !strings.Contains(stderr, "AJWT_TOKEN_TTL") || !strings.Contains(stderr, "usage: ajwt idp") {
		t.Fatalf("bad AJWT_TOKEN_TTL: code %d stderr %q", code, stderr)
	}
}

func TestShimChecksum(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCmd(t, "shim-checksum")
	if code != exitOK || stderr != "" {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(stdout) {
		t.Fatalf("output %q", stdout)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := "sha256:" + hex.EncodeToString(sum[:]) + "\n"; stdout != want {
		t.Fatalf("got %q, want %q", stdout, want)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAuditVerifyFreshDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "ajwt.db")
	st, err := idp.OpenSQLite(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := idp.GenerateClientsFile(filepath.Join(dir, "clients.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idp.New(t.Context(), idp.Config{Issuer: "http://localhost:8081", Store: st, Clients: cf, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "audit", "verify", "--db", db)
	if code != exitOK || !regexp.MustCompile(`^audit chain ok: \d+ events\n$`).MatchString(stdout) {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout, stderr)
	}

	missing := filepath.Join(dir, "missing.db")
	if code, _, _ := runCmd(t, "audit", "verify", "--db", missing); code != exitError {
		t.Fatalf("missing db: code %d, want 1", code)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("audit verify created the missing database")
	}
}

// testIDP starts an IDP over st behind httptest with generated clients and returns
// its URL and the admin secret.
func testIDP(t *testing.T, st idp.Store) (string, string) {
	t.Helper()
	cf, err := idp.GenerateClientsFile(filepath.Join(t.TempDir(), "clients.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	srv, err := idp.New(t.Context(), idp.Config{Issuer: issuer, Store: st, Clients: cf, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	for _, c := range cf.Clients {
		if c.Role == idp.RoleAdmin {
			return ts.URL, c.ClientSecret
		}
	}
	t.Fatal("no admin client generated")
	return "", ""
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRegister(t *testing.T) {
	url, secret := testIDP(t, idp.NewMemoryStore())
	t.Setenv("AJWT_ADMIN_ID", "admin")
	t.Setenv("AJWT_ADMIN_SECRET", secret)
	agent := writeFile(t, "agent.json", demoAgent)

	code, stdout, stderr := runCmd(t, "register", "agent", "-f", agent, "--idp-url", url)
	if code != exitOK {
		t.Fatalf("register agent: code %d stderr %q", code, stderr)
	}
	var got struct {
		AgentID  string `json:"agent_id"`
		Checksum string `json:"checksum"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.AgentID != "planner" ||
		got.Checksum != "sha256:b54b726ef7df787c3e6e5875d0ed83e264491b2d9bb4f9520842602f422eb6af" {
		t.Fatalf("register agent: stdout %q (%v)", stdout, err)
	}

	// The kind may also follow the flags; the URL may come from AJWT_IDP_URL.
	t.Setenv("AJWT_IDP_URL", url)
	wf := writeFile(t, "wf.json", demoWorkflow)
	if code, stdout, stderr := runCmd(t, "register", "-f", wf, "workflow"); code != exitOK || !strings.Contains(stdout, `"workflow_id": "demo-scan"`) {
		t.Fatalf("register workflow: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	sum := "sha256:" + strings.Repeat("ab", 32)
	if code, stdout, stderr := runCmd(t, "register", "shim", "--checksum", sum, "--note", "ci build"); code != exitOK || !strings.Contains(stdout, sum) {
		t.Fatalf("register shim: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if code, stdout, stderr := runCmd(t, "idp", "rotate-key"); code != exitOK || !strings.Contains(stdout, "{") {
		t.Fatalf("rotate-key: code %d stdout %q stderr %q", code, stdout, stderr)
	}

	// A file that is not JSON never reaches the IDP.
	bad := writeFile(t, "bad.json", `{"agent_id": `)
	if code, stdout, stderr := runCmd(t, "register", "agent", "-f", bad); code != exitError || stdout != "" || !strings.Contains(stderr, "not valid JSON") {
		t.Fatalf("bad file: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	// Valid JSON the IDP refuses: its error body goes to stderr.
	unknown := writeFile(t, "unknown.json", `{"agent_id": "x", "surprise": true}`)
	if code, stdout, stderr := runCmd(t, "register", "agent", "-f", unknown); code != exitError || stdout != "" || !strings.Contains(stderr, `"error":"invalid_request"`) {
		t.Fatalf("refused definition: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runCmd(t, "register", "agent", "-f", filepath.Join(t.TempDir(), "none.json")); code != exitError {
		t.Fatalf("missing file: code %d stderr %q", code, stderr)
	}
	big := writeFile(t, "big.json", `"`+strings.Repeat("a", maxDefinitionBytes)+`"`)
	if code, _, stderr := runCmd(t, "register", "agent", "-f", big); code != exitError || !strings.Contains(stderr, "larger than") {
		t.Fatalf("big file: code %d stderr %q", code, stderr)
	}

	// Credentials: a wrong secret fails; the secret file wins over the environment.
	t.Setenv("AJWT_ADMIN_SECRET", "wrong-secret-wrong-secret")
	if code, _, stderr := runCmd(t, "register", "agent", "-f", agent); code != exitError || !strings.Contains(stderr, "invalid_client") {
		t.Fatalf("wrong secret: code %d stderr %q", code, stderr)
	}
	secretFile := writeFile(t, "secret", secret+"\n")
	if code, _, stderr := runCmd(t, "register", "agent", "-f", agent, "--admin-secret-file", secretFile); code != exitOK {
		t.Fatalf("secret file: code %d stderr %q", code, stderr)
	}
	t.Setenv("AJWT_ADMIN_SECRET", "")
	if code, _, stderr := runCmd(t, "register", "agent", "-f", agent); code != exitError || !strings.Contains(stderr, "AJWT_ADMIN_SECRET") {
		t.Fatalf("no secret: code %d stderr %q", code, stderr)
	}
}

func TestAuditVerifyAfterRegistrations(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ajwt.db")
	st, err := idp.OpenSQLite(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	url, secret := testIDP(t, st)
	t.Setenv("AJWT_ADMIN_SECRET", secret)
	t.Setenv("AJWT_IDP_URL", url)
	if code, _, stderr := runCmd(t, "register", "agent", "-f", writeFile(t, "a.json", demoAgent)); code != exitOK {
		t.Fatalf("register: %d %q", code, stderr)
	}
	code, stdout, stderr := runCmd(t, "audit", "verify", "--db", db)
	if code != exitOK || !strings.HasPrefix(stdout, "audit chain ok: ") || strings.HasPrefix(stdout, "audit chain ok: 0 ") {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout, stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestIDPServe(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	addr := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"idp", "--addr", addr, "--db", filepath.Join(dir, "ajwt.db"), "--log-format", "json"}, &stdout, &stderr)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("idp exited early with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("idp did not come up: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	clients := filepath.Join(dir, "clients.json")
	fi, err := os.Stat(clients)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("clients.json mode %v", fi.Mode().Perm())
	}
	cf, err := idp.LoadClientsFile(clients)
	if err != nil {
		t.Fatal(err)
	}
	logs := stderr.String()
	if !strings.Contains(logs, clients) {
		t.Fatalf("the clients file path is not logged: %s", logs)
	}
	for _, c := range cf.Clients {
		if strings.Contains(logs, c.ClientSecret) {
			t.Fatalf("secret of %s logged", c.ClientID)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("idp did not shut down")
	}

	// A restart without --clients keeps the stored clients and generates nothing.
	if err := os.Remove(clients); err != nil {
		t.Fatal(err)
	}
	st, err := idp.OpenSQLite(t.Context(), filepath.Join(dir, "ajwt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := resolveClients(t.Context(), st, filepath.Join(dir, "ajwt.db"), "", quietLogger())
	if err != nil || got != nil {
		t.Fatalf("restart: clients %v err %v, want nil (keep stored)", got, err)
	}
	if _, err := os.Stat(clients); err == nil {
		t.Fatal("restart regenerated clients.json")
	}
}

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// demoNormalizers replace what differs between runs (ports, paths, ids, keys, the
// binary's checksum) so the demo output can be compared with a golden file. The
// planner checksum is the DESIGN §5.2 test vector and stays literal.
var demoNormalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`(data|clients) +\S+`), "$1 DIR"},
	{regexp.MustCompile(`inst-[A-Za-z0-9_-]+`), "inst-ID"},
	{regexp.MustCompile(`exe-[A-Za-z0-9_-]+`), "exe-ID"},
	{regexp.MustCompile(`jkt [A-Za-z0-9_-]{43}`), "jkt JKT"},
	{regexp.MustCompile(`shim build sha256:[0-9a-f]{64}`), "shim build sha256:BINARY"},
}

func TestDemo(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := runCmd(t, "demo", "--data", data)
	if code != exitOK {
		t.Fatalf("code %d stderr %s", code, stderr)
	}
	got := stdout
	for _, n := range demoNormalizers {
		got = n.re.ReplaceAllString(got, n.with)
	}
	golden := filepath.Join("testdata", "demo.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("demo output differs from %s (run with -update to accept):\n%s", golden, got)
	}
	for _, want := range []string{"/.well-known/oauth-authorization-server", "registered agent planner v1", "allowed shim build sha256:",
		"registered workflow demo-scan v1", "audit chain ok", "later issues"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	// The kept database verifies, and a second run reuses the data directory.
	if code, stdout, _ := runCmd(t, "audit", "verify", "--db", filepath.Join(data, "ajwt.db")); code != exitOK {
		t.Fatalf("verify demo db: %d %s", code, stdout)
	}
	if code, stdout, stderr := runCmd(t, "demo", "--data", data); code != exitOK || !strings.Contains(stdout, "demo-scan v2") {
		t.Fatalf("second run: code %d stdout %s stderr %s", code, stdout, stderr)
	}
}
