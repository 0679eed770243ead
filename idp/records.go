package idp

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// Table and log names.
const (
	tblClients     = "clients"
	tblKeys        = "keys"
	tblAgents      = "agents"
	tblAgentDup    = "agent_dup"
	tblAgentDefs   = "agent_defs"
	tblInstances   = "instances"
	tblInstanceKey = "instance_key"
	tblShims       = "shims"
	tblWorkflows   = "workflows"
	tblExecutions  = "executions"
	tblExecTokens  = "execution_tokens"
	tblRevoked     = "revoked"
	logAudit       = "audit"
	logRevocations = "revocations"
)

// Client roles (DESIGN §5.3).
const (
	RoleAdmin    = "admin"
	RoleApprover = "approver"
	RoleApp      = "app"
	RoleResource = "resource"
)

// Status values.
const (
	statusActive     = "active"
	statusSuperseded = "superseded"
	statusRevoked    = "revoked"
	statusOpen       = "open"
	statusClosed     = "closed"
	statePending     = "pending"
	stateActive      = "active"
	stateComplete    = "complete"
)

// Client is a registered OAuth client. The secret is stored only as a hash.
type Client struct {
	ClientID      string              `json:"client_id"`
	SecretHash    string              `json:"secret_hash"`
	Role          string              `json:"role"`
	AllowedParams map[string][]string `json:"allowed_params,omitempty"`
}

// SigningKey is one of the IDP's Ed25519 signing keys. State is next (published, not
// yet used), active (signing) or retired (published until KeepUntil).
type SigningKey struct {
	KID       string    `json:"kid"`
	Seed      []byte    `json:"seed"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	KeepUntil time.Time `json:"keep_until,omitzero"`
}

// AgentVersion is one registered definition of an agent.
type AgentVersion struct {
	Version        int       `json:"version"`
	Checksum       string    `json:"checksum"`
	RegistrationID string    `json:"registration_id"`
	Status         string    `json:"status"`
	RegisteredAt   time.Time `json:"registered_at"`
	DupKey         string    `json:"dup_key"`
}

// agentDefKey is the storage key of one version's definition. Definitions live in their
// own table so the agent record read on every mint stays small, and so a prompt is read
// only where an admin asked for it (T12).
func agentDefKey(agentID string, version int) string { return fmt.Sprintf("%s/%08d", agentID, version) }

// Agent is a registered agent with its versions.
type Agent struct {
	AgentID     string          `json:"agent_id"`
	Description string          `json:"description"`
	App         string          `json:"app"`
	MaxScopes   []string        `json:"max_scopes"`
	Status      string          `json:"status"`
	Versions    []*AgentVersion `json:"versions"`
}

// Active returns the active version, or nil.
func (a *Agent) Active() *AgentVersion {
	for _, v := range a.Versions {
		if v.Status == statusActive {
			return v
		}
	}
	return nil
}

// Instance is an enrolled agent instance: a key held in memory by one shim handle.
type Instance struct {
	InstanceID     string          `json:"instance_id"`
	AgentID        string          `json:"agent_id"`
	Version        int             `json:"version"`
	RegistrationID string          `json:"registration_id"`
	Checksum       string          `json:"checksum"`
	ShimChecksum   string          `json:"shim_checksum"`
	App            string          `json:"app"`
	JKT            string          `json:"jkt"`
	JWK            json.RawMessage `json:"jwk"`
	Status         string          `json:"status"`
	EnrolledAt     time.Time       `json:"enrolled_at"`
}

// Shim is an allowed shim build.
type Shim struct {
	Checksum  string    `json:"checksum"`
	Note      string    `json:"note"`
	AllowedAt time.Time `json:"allowed_at"`
}

// Workflow is one immutable version of a workflow definition.
type Workflow struct {
	WorkflowID         string         `json:"workflow_id"`
	Version            int            `json:"version"`
	Description        string         `json:"description"`
	EntryAgent         string         `json:"entry_agent"`
	MaxDelegationDepth int            `json:"max_delegation_depth"`
	Params             []string       `json:"params"`
	Steps              []WorkflowStep `json:"steps"`
	RegisteredAt       time.Time      `json:"registered_at"`
}

// WorkflowStep is a step of a workflow.
type WorkflowStep struct {
	ID         string           `json:"id"`
	Agent      string           `json:"agent"`
	Action     string           `json:"action"`
	Resource   string           `json:"resource"`
	Scopes     []string         `json:"scopes"`
	Operations []ajwt.Operation `json:"operations"`
	DependsOn  []string         `json:"depends_on"`
	Approval   string           `json:"approval"`
}

// Step returns the step with id, or nil.
func (w *Workflow) Step(id string) *WorkflowStep {
	for i := range w.Steps {
		if w.Steps[i].ID == id {
			return &w.Steps[i]
		}
	}
	return nil
}

// StepState is the AS-side state of one step of an execution.
type StepState struct {
	ID            string    `json:"id"`
	Agent         string    `json:"agent"`
	State         string    `json:"state"`
	OwnerInstance string    `json:"owner_instance"`
	ApprovedBy    string    `json:"approved_by"`
	CompletedAt   time.Time `json:"completed_at,omitzero"`
	ResultDigest  string    `json:"result_digest,omitempty"`
}

// TokenRef lists a token minted in an execution.
type TokenRef struct {
	JTI       string    `json:"jti"`
	StepID    string    `json:"step_id"`
	AgentID   string    `json:"agent_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Execution is a running (or closed) workflow execution owned by the app client that
// started it.
type Execution struct {
	ExecutionID     string            `json:"execution_id"`
	ClientID        string            `json:"client_id"`
	WorkflowID      string            `json:"workflow_id"`
	WorkflowVersion int               `json:"workflow_version"`
	User            string            `json:"user"`
	Intent          string            `json:"intent"`
	Params          map[string]string `json:"params"`
	IntentHash      string            `json:"intent_hash"`
	RootJTI         string            `json:"root_jti"`
	RootDigest      string            `json:"root_digest"`
	RootExpiry      time.Time         `json:"root_expiry"`
	Status          string            `json:"status"`
	CreatedAt       time.Time         `json:"created_at"`
	ClosedAt        time.Time         `json:"closed_at,omitzero"`
	Steps           []*StepState      `json:"steps"`
}

// Step returns the state of step id, or nil.
func (e *Execution) Step(id string) *StepState {
	for _, s := range e.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Revocation is one entry of the revocation feed.
type Revocation struct {
	Seq   int64     `json:"seq"`
	Kind  string    `json:"kind"`
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until,omitzero"`
}

// Revocation kinds.
const (
	RevokeToken     = "token"
	RevokeAgent     = "agent"
	RevokeInstance  = "instance"
	RevokeExecution = "execution"
	RevokeStep      = "step"
)

// getJSON reads and decodes a record; a missing record is ErrNotFound.
func getJSON[T any](tx Tx, table, key string) (*T, error) {
	b, err := tx.Get(table, key)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode %s/%s: %w", table, key, err)
	}
	return &v, nil
}

// putJSON encodes and stores a record.
func putJSON(tx Tx, table, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", table, key, err)
	}
	return tx.Put(table, key, b)
}

// listJSON reads every record of a table with a key prefix.
func listJSON[T any](tx Tx, table, prefix string) ([]*T, error) {
	vals, err := tx.List(table, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(vals))
	for _, b := range vals {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", table, err)
		}
		out = append(out, &v)
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
