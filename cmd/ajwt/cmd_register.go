package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxDefinitionBytes bounds a definition file given to `ajwt register -f`.
const maxDefinitionBytes = 1 << 20

// maxResponseBytes bounds what the CLI reads of an IDP response.
const maxResponseBytes = 4 << 20

// registerPaths maps the kinds of `ajwt register` to IDP endpoints.
var registerPaths = map[string]string{
	"agent":    "/v1/agents",
	"workflow": "/v1/workflows",
	"shim":     "/v1/shims",
}

const registerAbout = `Registers a definition with the IDP through its admin API and prints the IDP's JSON
response. FILE must be valid JSON of at most 1 MiB (see README for the layouts). A shim
build can be given as --checksum sha256:<hex> [--note TEXT] instead of -f.

The admin credentials come from the environment, never from a flag value:
AJWT_ADMIN_ID (default "admin") and AJWT_ADMIN_SECRET, or --admin-secret-file.`

// adminFlags are the flags shared by every command that talks to the admin API.
type adminFlags struct {
	idpURL     string
	adminID    string
	secretFile string
}

func (a *adminFlags) register(c *command) {
	c.StringVar(&a.idpURL, "idp-url", "http://localhost:8081", "base URL of the IDP (its issuer)")
	c.StringVar(&a.adminID, "admin-id", "admin", "client_id of the admin client")
	c.StringVar(&a.secretFile, "admin-secret-file", "", "read the admin secret from this file instead of $AJWT_ADMIN_SECRET")
}

// secret returns the admin secret from --admin-secret-file or $AJWT_ADMIN_SECRET.
func (a *adminFlags) secret() (string, error) {
	if a.secretFile != "" {
		b, err := readLimited(a.secretFile, 64<<10)
		if err != nil {
			return "", fmt.Errorf("admin secret file: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("admin secret file %s is empty", a.secretFile)
		}
		return s, nil
	}
	if s := os.Getenv("AJWT_ADMIN_SECRET"); s != "" {
		return s, nil
	}
	return "", errors.New("no admin secret: set AJWT_ADMIN_SECRET or --admin-secret-file")
}

// client authenticates as the admin and returns a client holding an admin token.
func (a *adminFlags) client(ctx context.Context) (*adminClient, error) {
	secret, err := a.secret()
	if err != nil {
		return nil, err
	}
	if a.adminID == "" {
		return nil, errors.New("no admin client id: set AJWT_ADMIN_ID or --admin-id")
	}
	return newAdminClient(ctx, a.idpURL, a.adminID, secret)
}

func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt register", "ajwt register agent|workflow|shim -f FILE [--idp-url URL]", registerAbout)
	var af adminFlags
	af.register(c)
	file := c.String("f", "", "JSON file with the definition")
	checksum := c.String("checksum", "", "shim only: the build's checksum (sha256:<hex>, see 'ajwt shim-checksum')")
	note := c.String("note", "", "shim only: a note recorded with the checksum")

	// The kind may come before or after the flags.
	var kind string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, args = args[0], args[1:]
	}
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	rest := c.Args()
	if kind == "" && len(rest) > 0 {
		kind, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return c.usageError(stderr, fmt.Errorf("unexpected arguments %q", rest))
	}
	path, known := registerPaths[kind]
	if !known {
		return c.usageError(stderr, fmt.Errorf("what to register: agent, workflow or shim (got %q)", kind))
	}

	var body []byte
	switch {
	case *file != "" && (*checksum != "" || *note != ""):
		return c.usageError(stderr, errors.New("give either -f or --checksum/--note, not both"))
	case *file != "":
		b, err := readDefinition(*file)
		if err != nil {
			fmt.Fprintf(stderr, "ajwt register: %v\n", err)
			return exitError
		}
		body = b
	case kind == "shim" && *checksum != "":
		body, _ = json.Marshal(map[string]string{"checksum": *checksum, "note": *note})
	case kind == "shim":
		return c.usageError(stderr, errors.New("-f FILE or --checksum is required"))
	default:
		return c.usageError(stderr, errors.New("-f FILE is required"))
	}

	cl, err := af.client(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt register: %v\n", err)
		return exitError
	}
	resp, err := cl.do(ctx, http.MethodPost, path, body)
	return printResult(stdout, stderr, "ajwt register", resp, err)
}

// printResult prints a successful response body (indented) to stdout, or the error (an
// IDP error body as the IDP sent it) to stderr.
func printResult(stdout, stderr io.Writer, prefix string, resp []byte, err error) int {
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			fmt.Fprintf(stderr, "%s: %s %s: HTTP %d\n%s\n", prefix, ae.method, ae.url, ae.status, bytes.TrimSpace(ae.body))
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		}
		return exitError
	}
	resp = bytes.TrimSpace(resp)
	var out bytes.Buffer
	if json.Indent(&out, resp, "", "  ") != nil {
		out.Reset()
		out.Write(resp)
	}
	out.WriteByte('\n')
	_, _ = stdout.Write(out.Bytes())
	return exitOK
}

// readDefinition reads a definition file: valid JSON, at most maxDefinitionBytes.
func readDefinition(path string) ([]byte, error) {
	b, err := readLimited(path, maxDefinitionBytes)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", path)
	}
	return b, nil
}

// readLimited reads at most limit bytes of path; a larger file is an error.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// apiError is a non-2xx answer of the IDP.
type apiError struct {
	method, url string
	status      int
	body        []byte
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.status, bytes.TrimSpace(e.body))
}

// adminClient calls the IDP's admin API with a Bearer admin token.
type adminClient struct {
	base  string
	http  *http.Client
	token string
}

// newAdminClient validates base and obtains an admin token with client_credentials
// (scope ajwt:admin), authenticating with client_secret_basic: id and secret are
// form-urlencoded before Basic encoding (RFC 6749 §2.3.1).
func newAdminClient(ctx context.Context, base, id, secret string) (*adminClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--idp-url must be an http(s) base URL, got %q", base)
	}
	cl := &adminClient{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{
			Timeout: 30 * time.Second,
			// Never resend credentials or a POST body to wherever a redirect points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"ajwt:admin"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	body, err := cl.send(req)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return nil, errors.New("admin token: the token endpoint answered without an access_token")
	}
	cl.token = tok.AccessToken
	return cl, nil
}

// do sends a request with the admin token; body, when not nil, is sent as JSON.
func (cl *adminClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	return cl.send(req)
}

func (cl *adminClient) send(req *http.Request) ([]byte, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &apiError{method: req.Method, url: req.URL.Redacted(), status: resp.StatusCode, body: b}
	}
	return b, nil
}
