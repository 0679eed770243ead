package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/agentic-jwt/patchcrew/idp"
)

const demoAbout = `Starts an in-process IDP on a free loopback port (SQLite database and generated
clients under --data, --baseline on), registers a sample agent, this binary's shim build
and a two-step workflow through the IDP's admin HTTP API, then acts as the app with an
in-memory agent key: enrolls an instance, starts an execution, shows a refused and an
allowed mint, completes a step, introspects, closes; verifies the audit chain and prints
what it did. With --serve it keeps the IDP running until Ctrl-C.

The agents, resource proxy, forge and OSV mirror arrive in later issues.`

// demoAgent is the sample agent: the Planner of the agent-checksum test vector.
const demoAgent = `{
  "agent_id": "planner",
  "description": "Lists the repository's files and queries OSV (sample agent of the demo).",
  "prompt": "\r\n  You are the Planner agent.  \r\nList the files of {repo}, then query OSV.\t\r\n\r\n",
  "tools": [
    {"name": "list_files", "description": "List the files of the target repository.",
     "parameters": {"type": "object", "properties": {}}},
    {"name": "query_vulns", "description": "Query OSV for the packages found in the manifests.",
     "parameters": {"type": "object", "properties": {"packages": {"type": "array", "items": {"type": "string"}}}, "required": ["packages"]}}
  ],
  "config": {"provider": "offline", "model": "ajwt-scripted-1", "temperature": 0},
  "app": "patchbot",
  "max_scopes": ["repo:read", "vulns:read"]
}`

// demoWorkflow is a two-step workflow for the sample agent.
const demoWorkflow = `{
  "workflow_id": "demo-scan",
  "description": "List a repository's files, then query OSV (two-step demo).",
  "entry_agent": "planner",
  "max_delegation_depth": 0,
  "params": ["repo"],
  "steps": [
    {"id": "list_files", "agent": "planner", "resource": "urn:ajwt:resource:github", "scopes": ["repo:read"],
     "operations": [{"method": "GET", "path": "/repos/{repo}"}, {"method": "GET", "path": "/repos/{repo}/git/trees/*"}],
     "depends_on": [], "approval": "none"},
    {"id": "query_vulns", "agent": "planner", "resource": "urn:ajwt:resource:osv", "scopes": ["vulns:read"],
     "operations": [{"method": "POST", "path": "/v1/querybatch"}, {"method": "GET", "path": "/v1/vulns/*"}],
     "depends_on": ["list_files"], "approval": "none"}
  ]
}`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt demo", "ajwt demo [--data DIR] [--serve]", demoAbout)
	data := c.String("data", "", "directory for ajwt.db and clients.json (default: a temporary directory, removed on exit)")
	serve := c.Bool("serve", false, "keep the IDP serving until Ctrl-C")
	logFormat := c.String("log-format", "text", "log format: text or json")
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 {
		return c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args()))
	}
	log, err := newLogger(stderr, *logFormat)
	if err != nil {
		return c.usageError(stderr, err)
	}
	if err := demo(ctx, *data, *serve, stdout, log); err != nil {
		fmt.Fprintf(stderr, "ajwt demo: %v\n", err)
		return exitError
	}
	return exitOK
}

func demo(ctx context.Context, dataDir string, serve bool, out io.Writer, log *slog.Logger) (err error) {
	temp := dataDir == ""
	if temp {
		if dataDir, err = os.MkdirTemp("", "ajwt-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
	} else if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(dataDir, "ajwt.db")
	clientsPath := filepath.Join(dataDir, "clients.json")

	st, err := idp.OpenSQLite(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	cf, _, err := loadOrGenerateClients(clientsPath)
	if err != nil {
		return err
	}
	var admin *idp.ClientConfig
	for i := range cf.Clients {
		if cf.Clients[i].Role == idp.RoleAdmin {
			admin = &cf.Clients[i]
			break
		}
	}
	if admin == nil {
		return fmt.Errorf("%s has no admin client", clientsPath)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	srv, err := idp.New(ctx, idp.Config{Issuer: issuer, Store: st, Clients: cf, Baseline: true, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- serveHTTP(sctx, ln, srv.Handler(), "", "", log) }()
	defer func() {
		stop()
		if serr := <-served; err == nil {
			err = serr
		}
	}()

	where := dataDir
	if temp {
		where += " (temporary: removed on exit; pass --data DIR to keep it)"
	}
	fmt.Fprintf(out, "A-JWT demo: identity provider only, for now\n\n")
	fmt.Fprintf(out, "  IDP        %s (in-process, --baseline on)\n", issuer)
	fmt.Fprintf(out, "  discovery  %s/.well-known/oauth-authorization-server\n", issuer)
	fmt.Fprintf(out, "  data       %s\n", where)
	fmt.Fprintf(out, "  clients    %s (admin, patchbot, proxy, reviewer; secrets only in the file)\n\n", clientsPath)

	cl, err := newAdminClient(ctx, issuer, admin.ClientID, admin.ClientSecret)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  1. admin token obtained (client_credentials, scope ajwt:admin)\n")

	var agent struct {
		AgentID  string `json:"agent_id"`
		Version  int    `json:"version"`
		Checksum string `json:"checksum"`
	}
	if err := demoPost(ctx, cl, "/v1/agents", demoAgent, &agent); err != nil {
		return err
	}
	fmt.Fprintf(out, "  2. registered agent %s v%d, checksum %s\n", agent.AgentID, agent.Version, agent.Checksum)

	sum, err := shimChecksum()
	if err != nil {
		return err
	}
	shim, _ := json.Marshal(map[string]string{"checksum": sum, "note": "ajwt demo: this binary"})
	if err := demoPost(ctx, cl, "/v1/shims", string(shim), nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "  3. allowed shim build %s (this binary)\n", sum)

	var wf struct {
		WorkflowID string `json:"workflow_id"`
		Version    int    `json:"version"`
	}
	if err := demoPost(ctx, cl, "/v1/workflows", demoWorkflow, &wf); err != nil {
		return err
	}
	fmt.Fprintf(out, "  4. registered workflow %s v%d: list_files -> query_vulns\n", wf.WorkflowID, wf.Version)

	var app, resource idp.ClientConfig
	for _, c := range cf.Clients {
		switch c.Role {
		case idp.RoleApp:
			app = c
		case idp.RoleResource:
			resource = c
		}
	}
	if app.ClientID == "" || resource.ClientID == "" {
		return fmt.Errorf("%s needs an app and a resource client", clientsPath)
	}
	if err := demoFlow(ctx, out, issuer, app, resource, agent.Checksum, sum); err != nil {
		return err
	}

	n, err := idp.VerifyAuditChain(ctx, st)
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	fmt.Fprintf(out, " 13. audit chain ok: %d events\n\n", n)

	fmt.Fprintf(out, "Not here yet: the agents, the resource proxy, the forge and the OSV mirror arrive in\n")
	fmt.Fprintf(out, "later issues, so no tool call reaches GitHub or OSV and no pull request is opened.\n")
	if !serve {
		return nil
	}
	fmt.Fprintf(out, "\nServing %s until Ctrl-C.\n", issuer)
	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		served <- err // for the deferred receive
		return err
	}
}

// demoPost posts a JSON body with the admin token and decodes the answer into v.
func demoPost(ctx context.Context, cl *adminClient, path, body string, v any) error {
	resp, err := cl.do(ctx, http.MethodPost, path, []byte(body))
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(resp, v)
}
