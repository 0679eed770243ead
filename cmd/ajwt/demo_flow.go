package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/idp"
)

// basicClient calls the IDP as one client with client_secret_basic.
type basicClient struct {
	*adminClient
	id, secret string
}

func newBasicClient(base string, c idp.ClientConfig) *basicClient {
	return &basicClient{adminClient: &adminClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, id: c.ClientID, secret: c.ClientSecret}
}

// post sends body (JSON, or a form when form is true) with an optional DPoP proof.
func (b *basicClient) post(ctx context.Context, path string, body []byte, form bool, dpop string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+path, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if form {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if dpop != "" {
		req.Header.Set("DPoP", dpop)
	}
	req.SetBasicAuth(url.QueryEscape(b.id), url.QueryEscape(b.secret))
	return b.send(req)
}

// demoFlow runs the protocol as the app would, with an in-memory agent key: enroll,
// start an execution, a refused and an allowed mint, completion, introspection by the
// resource client, and close.
func demoFlow(ctx context.Context, out io.Writer, issuer string, app, resource idp.ClientConfig, checksum, shim string) error {
	appc, rc := newBasicClient(issuer, app), newBasicClient(issuer, resource)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	proof := func(path string) string {
		p, _ := ajwt.NewDPoPProof(key, http.MethodPost, issuer+path, "", "", time.Now())
		return p
	}
	enrollPath := "/v1/agents/planner/instances"
	body, _ := json.Marshal(map[string]string{"agent_checksum": checksum, "shim_checksum": shim})
	var inst struct {
		InstanceID string `json:"instance_id"`
		JKT        string `json:"jkt"`
	}
	if err := decodeInto(appc.post(ctx, enrollPath, body, false, proof(enrollPath)))(&inst); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	fmt.Fprintf(out, "  5. enrolled planner instance %s (Ed25519 key in memory, jkt %s)\n", inst.InstanceID, inst.JKT)

	body, _ = json.Marshal(map[string]any{"workflow_id": "demo-scan", "user": "alice", "intent": "scan acme/webapp for vulnerable dependencies",
		"params": map[string]string{"repo": "acme/webapp"}})
	var ex struct {
		ExecutionID    string `json:"execution_id"`
		RootDelegation string `json:"root_delegation"`
	}
	if err := decodeInto(appc.post(ctx, "/v1/executions", body, false, ""))(&ex); err != nil {
		return fmt.Errorf("start execution: %w", err)
	}
	fmt.Fprintf(out, "  6. started execution %s for alice on acme/webapp\n", ex.ExecutionID)

	mint := func(step, resource string) ([]byte, error) {
		f := url.Values{"grant_type": {"agent_checksum"}, "agent_id": {"planner"}, "agent_checksum": {checksum}, "execution_id": {ex.ExecutionID},
			"step_id": {step}, "resource": {resource}, "delegation_chain": {ex.RootDelegation}}
		return appc.post(ctx, "/oauth2/token", []byte(f.Encode()), true, proof("/oauth2/token"))
	}
	_, err = mint("query_vulns", ajwt.ResourceOSV)
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("minting query_vulns before list_files completed was not refused: %v", err)
	}
	var refusal ajwt.Body
	_ = json.Unmarshal(ae.body, &refusal)
	fmt.Fprintf(out, "  7. query_vulns before list_files: refused, HTTP %d %s (%s)\n", ae.status, refusal.Error, refusal.Reason)

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := decodeInto(mint("list_files", ajwt.ResourceGitHub))(&tok); err != nil {
		return fmt.Errorf("mint list_files: %w", err)
	}
	claims, err := payload[ajwt.IntentClaims](tok.AccessToken)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  8. minted list_files: sub %s, aud %s, scope %q, cnf.jkt %s\n", claims.Subject, claims.Audience[0], claims.Scope, claims.Cnf.JKT)
	fmt.Fprintf(out, "     chain %v, operations:", claims.Intent.DelegationChain)
	for _, op := range claims.Intent.Operations {
		fmt.Fprintf(out, " %s %s;", op.Method, op.Path)
	}
	fmt.Fprintln(out)

	var intro struct {
		Active bool `json:"active"`
	}
	form := []byte(url.Values{"token": {tok.AccessToken}}.Encode())
	if err := decodeInto(rc.post(ctx, "/oauth2/introspect", form, true, ""))(&intro); err != nil {
		return fmt.Errorf("introspect: %w", err)
	}
	fmt.Fprintf(out, "  9. introspected by the resource client: active=%v\n", intro.Active)

	complete := "/v1/executions/" + ex.ExecutionID + "/steps/list_files/complete"
	if _, err := appc.post(ctx, complete, []byte("{}"), false, proof(complete)); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	if err := decodeInto(rc.post(ctx, "/oauth2/introspect", form, true, ""))(&intro); err != nil {
		return fmt.Errorf("introspect: %w", err)
	}
	fmt.Fprintf(out, " 10. completed list_files: its token now introspects active=%v\n", intro.Active)
	if err := decodeInto(mint("query_vulns", ajwt.ResourceOSV))(&tok); err != nil {
		return fmt.Errorf("mint query_vulns: %w", err)
	}
	fmt.Fprintf(out, " 11. minted query_vulns (aud %s)\n", ajwt.ResourceOSV)
	if _, err := appc.post(ctx, "/v1/executions/"+ex.ExecutionID+"/close", []byte("{}"), false, ""); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	form = []byte(url.Values{"token": {tok.AccessToken}}.Encode())
	if err := decodeInto(rc.post(ctx, "/oauth2/introspect", form, true, ""))(&intro); err != nil {
		return fmt.Errorf("introspect: %w", err)
	}
	fmt.Fprintf(out, " 12. closed the execution: the query_vulns token introspects active=%v\n", intro.Active)
	return nil
}

// decodeInto turns a (body, error) pair into a decoder of the body.
func decodeInto(b []byte, err error) func(v any) error {
	return func(v any) error {
		if err != nil {
			return err
		}
		return json.Unmarshal(b, v)
	}
}

// payload decodes a JWT's payload without verifying it (for display only).
func payload[T any](compact string) (*T, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var v T
	return &v, json.Unmarshal(b, &v)
}
