package shim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// DefinitionSource yields the live definition of an agent: the prompt template, tool
// schemas and model config the agent really sends to the model. The shim reads it before
// every enrollment and every mint, so a definition changed at run time is reported to the
// IDP as it is (DESIGN §5.2, T4/T5).
type DefinitionSource interface {
	// AgentDefinition returns the current definition. It must not return nil.
	AgentDefinition() *ajwt.AgentDefinition
}

// StaticDefinition is a DefinitionSource that always returns a copy of the same
// definition.
type StaticDefinition ajwt.AgentDefinition

// AgentDefinition implements DefinitionSource.
func (d StaticDefinition) AgentDefinition() *ajwt.AgentDefinition {
	c := ajwt.AgentDefinition(d)
	c.Tools = append([]ajwt.Tool(nil), d.Tools...)
	return &c
}

var (
	_ DefinitionSource = StaticDefinition{}
	_ DefinitionSource = DefinitionFunc(nil)
)

// DefinitionFunc adapts a function to DefinitionSource (for definitions assembled at
// run time, e.g. from prompt and schema files).
type DefinitionFunc func() *ajwt.AgentDefinition

// AgentDefinition implements DefinitionSource.
func (f DefinitionFunc) AgentDefinition() *ajwt.AgentDefinition { return f() }

// Agent is one agent instance: an Ed25519 key generated in memory, its enrollment, the
// delegation chains it holds per execution and its token cache. The private key never
// leaves the handle: no method returns, logs or writes it, or exposes a signer. An Agent
// is safe for concurrent use.
type Agent struct {
	c   *Client
	src DefinitionSource
	id  string
	key ed25519.PrivateKey
	jkt string

	mu         sync.Mutex
	instanceID string
	revoked    bool
	chains     map[string][]string // execution id → delegation JWTs, root first
	tokens     map[tokenKey]*cachedToken
	flights    map[tokenKey]*flight
}

// NewAgent creates the handle of a new instance of the agent src describes, with a fresh
// Ed25519 key held only in memory. Call Enroll before using it.
func (c *Client) NewAgent(src DefinitionSource) (*Agent, error) {
	if src == nil {
		return nil, errors.New("shim: nil DefinitionSource")
	}
	def := src.AgentDefinition()
	if def == nil || def.AgentID == "" || !ajwt.ValidID(def.AgentID) {
		return nil, errors.New("shim: the agent definition needs a valid agent_id")
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("shim: generate instance key: %w", err)
	}
	jkt, err := ajwt.Thumbprint(key.Public())
	if err != nil {
		return nil, fmt.Errorf("shim: thumbprint: %w", err)
	}
	return &Agent{c: c, src: src, id: def.AgentID, key: key, jkt: jkt,
		chains: map[string][]string{}, tokens: map[tokenKey]*cachedToken{}, flights: map[tokenKey]*flight{}}, nil
}

// ID returns the agent id.
func (a *Agent) ID() string { return a.id }

// JKT returns the RFC 7638 thumbprint of the instance's public key (the `cnf.jkt` of its
// tokens and delegation links).
func (a *Agent) JKT() string { return a.jkt }

// InstanceID returns the instance id the IDP assigned at enrollment, or "" before.
func (a *Agent) InstanceID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instanceID
}

// checksum recomputes the agent checksum from the live definition. It is called before
// every enrollment and mint; a mismatch is never short-circuited here, the IDP refuses
// and audits it.
func (a *Agent) checksum() (string, error) {
	def := a.src.AgentDefinition()
	if def == nil {
		return "", errors.New("definition source returned nil")
	}
	sum, err := ajwt.Checksum(def)
	if err != nil {
		return "", fmt.Errorf("agent checksum: %w", err)
	}
	return sum, nil
}

// proof returns a DPoP proof builder for IDP calls signed by the instance key.
func (a *Agent) proof(method string) func(htu, nonce string) (string, error) {
	return func(htu, nonce string) (string, error) {
		return ajwt.NewDPoPProof(a.key, method, htu, "", nonce, a.c.now())
	}
}

// Enroll registers this instance with the IDP (POST /v1/agents/{id}/instances) with a
// DPoP proof signed by the instance key and the recomputed agent checksum and the
// client's shim checksum.
func (a *Agent) Enroll(ctx context.Context) error {
	a.mu.Lock()
	enrolled := a.instanceID != ""
	a.mu.Unlock()
	if enrolled {
		return fmt.Errorf("shim: enroll %s: this handle is already enrolled", a.id)
	}
	sum, err := a.checksum()
	if err != nil {
		return fmt.Errorf("shim: enroll %s: %w", a.id, err)
	}
	body, err := jsonBody(map[string]string{"agent_checksum": sum, "shim_checksum": a.c.shimChecksum})
	if err != nil {
		return fmt.Errorf("shim: enroll %s: %w", a.id, err)
	}
	var out struct {
		InstanceID string `json:"instance_id"`
		JKT        string `json:"jkt"`
	}
	path := "/v1/agents/" + url.PathEscape(a.id) + "/instances"
	if err := a.c.call(ctx, idpRequest{method: http.MethodPost, path: path, body: body, proof: a.proof(http.MethodPost)}, &out); err != nil {
		return fmt.Errorf("shim: enroll %s: %w", a.id, err)
	}
	if out.InstanceID == "" || out.JKT != a.jkt {
		return fmt.Errorf("shim: enroll %s: the IDP answered an unexpected instance", a.id)
	}
	a.mu.Lock()
	a.instanceID = out.InstanceID
	a.mu.Unlock()
	a.c.log.InfoContext(ctx, "agent instance enrolled", "agent_id", a.id, "instance_id", out.InstanceID, "jkt", a.jkt)
	return nil
}

// Revoke revokes this instance at the IDP (POST /v1/agents/{id}/instances/{iid}/revoke)
// and drops its cached tokens and chains. Call it on shutdown. Revoking a handle that
// was never enrolled does nothing.
func (a *Agent) Revoke(ctx context.Context) error {
	a.mu.Lock()
	iid := a.instanceID
	a.mu.Unlock()
	if iid == "" {
		return nil
	}
	path := "/v1/agents/" + url.PathEscape(a.id) + "/instances/" + url.PathEscape(iid) + "/revoke"
	if err := a.c.call(ctx, idpRequest{method: http.MethodPost, path: path}, nil); err != nil {
		return fmt.Errorf("shim: revoke instance %s of %s: %w", iid, a.id, err)
	}
	a.mu.Lock()
	a.revoked = true
	clear(a.tokens)
	clear(a.chains)
	a.mu.Unlock()
	a.c.log.InfoContext(ctx, "agent instance revoked", "agent_id", a.id, "instance_id", iid)
	return nil
}

// setChain records the delegation chain this agent holds in an execution.
func (a *Agent) setChain(executionID string, chain []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chains[executionID] = chain
}

// chain returns a copy of the delegation chain held in an execution, or nil.
func (a *Agent) chain(executionID string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.chains[executionID]...)
}
