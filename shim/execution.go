package shim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// Workflow is the registered workflow version an execution runs (GET
// /v1/workflows/{id}?version=N), as far as the shim needs it.
type Workflow struct {
	WorkflowID         string   `json:"workflow_id"`
	Version            int      `json:"version"`
	EntryAgent         string   `json:"entry_agent"`
	MaxDelegationDepth int      `json:"max_delegation_depth"`
	Params             []string `json:"params"`
	Steps              []Step   `json:"steps"`
}

// Step is one step of a workflow: which agent runs which action (tool) against which
// resource, with which operations.
type Step struct {
	ID         string           `json:"id"`
	Agent      string           `json:"agent"`
	Action     string           `json:"action"`
	Resource   string           `json:"resource"`
	Scopes     []string         `json:"scopes"`
	Operations []ajwt.Operation `json:"operations"`
	DependsOn  []string         `json:"depends_on"`
	Approval   string           `json:"approval"`
}

// Execution is one run of a workflow, started by this client. It is immutable after
// StartExecution and safe for concurrent use.
type Execution struct {
	id         string
	intentHash string
	user       string
	root       string
	wf         Workflow
}

// StartExecution starts an execution of the newest version of workflowID for user
// (POST /v1/executions) and loads the workflow version it runs, so the Execution knows
// each step's agent, action and resource.
func (c *Client) StartExecution(ctx context.Context, workflowID, user, intent string, params map[string]string) (*Execution, error) {
	if params == nil {
		params = map[string]string{}
	}
	body, err := jsonBody(map[string]any{"workflow_id": workflowID, "user": user, "intent": intent, "params": params})
	if err != nil {
		return nil, fmt.Errorf("shim: start execution of %s: %w", workflowID, err)
	}
	var out struct {
		ExecutionID     string `json:"execution_id"`
		WorkflowVersion int    `json:"workflow_version"`
		IntentHash      string `json:"intent_hash"`
		RootDelegation  string `json:"root_delegation"`
	}
	if err := c.call(ctx, idpRequest{method: http.MethodPost, path: "/v1/executions", body: body}, &out); err != nil {
		return nil, fmt.Errorf("shim: start execution of %s: %w", workflowID, err)
	}
	if out.ExecutionID == "" || out.RootDelegation == "" || out.WorkflowVersion < 1 {
		return nil, fmt.Errorf("shim: start execution of %s: incomplete answer from the IDP", workflowID)
	}
	ex := &Execution{id: out.ExecutionID, intentHash: out.IntentHash, user: user, root: out.RootDelegation}
	path := "/v1/workflows/" + url.PathEscape(workflowID) + "?version=" + strconv.Itoa(out.WorkflowVersion)
	if err := c.call(ctx, idpRequest{method: http.MethodGet, path: path}, &ex.wf); err != nil {
		return nil, fmt.Errorf("shim: load workflow %s v%d of execution %s: %w", workflowID, out.WorkflowVersion, out.ExecutionID, err)
	}
	if ex.wf.WorkflowID != workflowID || ex.wf.Version != out.WorkflowVersion {
		return nil, fmt.Errorf("shim: load workflow %s v%d: the IDP answered another version", workflowID, out.WorkflowVersion)
	}
	c.log.InfoContext(ctx, "execution started", "execution_id", ex.id, "workflow_id", workflowID, "workflow_version", out.WorkflowVersion)
	return ex, nil
}

// ID returns the execution id.
func (e *Execution) ID() string { return e.id }

// IntentHash returns the execution's intent hash as the IDP computed it.
func (e *Execution) IntentHash() string { return e.intentHash }

// User returns the user the execution acts for.
func (e *Execution) User() string { return e.user }

// Workflow returns a copy of the workflow version the execution runs.
func (e *Execution) Workflow() Workflow {
	w := e.wf
	w.Steps = slices.Clone(e.wf.Steps)
	return w
}

// Step returns the workflow step with the given id.
func (e *Execution) Step(id string) (Step, bool) {
	for _, s := range e.wf.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Bind gives the entry agent the execution's root delegation, so it can mint its own
// steps and delegate the others. The agent must be the workflow's entry agent.
func (e *Execution) Bind(entry *Agent) error {
	if entry == nil || entry.id != e.wf.EntryAgent {
		return fmt.Errorf("shim: bind execution %s: the entry agent is %q", e.id, e.wf.EntryAgent)
	}
	entry.setChain(e.id, []string{e.root})
	return nil
}

// Delegate signs a delegation link (DESIGN §5.5) from a to `to` for steps of ex with a's
// instance key, under the last link a holds in ex, and gives `to` the extended chain.
// Whether the steps may be delegated (subset of the parent, depth) is checked by the IDP
// when `to` mints, so a bad delegation is refused and audited there.
func (a *Agent) Delegate(ctx context.Context, ex *Execution, to *Agent, steps ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if to == nil || len(steps) == 0 {
		return fmt.Errorf("shim: delegate in %s: a delegatee and at least one step are required", ex.ID())
	}
	if a.InstanceID() == "" {
		return fmt.Errorf("shim: delegate in %s: %s is not enrolled", ex.ID(), a.id)
	}
	chain := a.chain(ex.ID())
	if len(chain) == 0 {
		return fmt.Errorf("shim: delegate in %s: %s holds no delegation in this execution", ex.ID(), a.id)
	}
	parent, err := unverifiedDelegation(chain[len(chain)-1])
	if err != nil {
		return fmt.Errorf("shim: delegate in %s: parent link: %w", ex.ID(), err)
	}
	now := a.c.now().Unix()
	claims := ajwt.DelegationClaims{
		Issuer: ajwt.AgentSubject(a.id), Subject: ajwt.AgentSubject(to.id), ExecutionID: ex.ID(),
		Steps: slices.Clone(steps), Prev: parent.JTI, IssuedAt: now, Expiry: parent.Expiry, JTI: ajwt.NewJTI(),
		Cnf: &ajwt.Confirmation{JKT: to.jkt},
	}
	link, err := ajwt.Sign(ajwt.Header{Typ: ajwt.TypDelegation, Kid: a.jkt}, claims, a.key)
	if err != nil {
		return fmt.Errorf("shim: delegate in %s: sign link: %w", ex.ID(), err)
	}
	to.setChain(ex.ID(), append(chain, link))
	a.c.log.InfoContext(ctx, "delegated", "execution_id", ex.ID(), "from", a.id, "to", to.id, "steps", strings.Join(steps, ","), "jti", claims.JTI)
	return nil
}

// unverifiedDelegation decodes the claims of a delegation JWT the shim holds itself
// (received from the IDP or signed by a delegator in this process); the IDP verifies it.
func unverifiedDelegation(compact string) (*ajwt.DelegationClaims, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var c ajwt.DelegationClaims
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if c.JTI == "" || c.Expiry == 0 {
		return nil, errors.New("delegation has no jti or exp")
	}
	return &c, nil
}

// Complete reports a step done (POST /v1/executions/{id}/steps/{step}/complete) with a
// DPoP proof of the instance that owns it, then drops the step's cached tokens (the IDP
// revokes them). The shim calls it when the delegated work returns to the delegator.
func (a *Agent) Complete(ctx context.Context, ex *Execution, step string) error {
	path := "/v1/executions/" + url.PathEscape(ex.ID()) + "/steps/" + url.PathEscape(step) + "/complete"
	err := a.c.call(ctx, idpRequest{method: http.MethodPost, path: path, body: []byte("{}"), proof: a.proof(http.MethodPost)}, nil)
	if err != nil {
		return fmt.Errorf("shim: complete %s/%s by %s: %w", ex.ID(), step, a.id, err)
	}
	a.dropTokens(ex.ID(), step)
	a.c.log.InfoContext(ctx, "step completed", "execution_id", ex.ID(), "step_id", step, "agent_id", a.id)
	return nil
}

// Close closes the execution (POST /v1/executions/{id}/close); its tokens stop working.
func (c *Client) Close(ctx context.Context, ex *Execution) error {
	path := "/v1/executions/" + url.PathEscape(ex.ID()) + "/close"
	if err := c.call(ctx, idpRequest{method: http.MethodPost, path: path, body: []byte("{}")}, nil); err != nil {
		return fmt.Errorf("shim: close execution %s: %w", ex.ID(), err)
	}
	c.log.InfoContext(ctx, "execution closed", "execution_id", ex.ID())
	return nil
}
