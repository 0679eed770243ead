package ajwt

import (
	"encoding/json"
	"errors"
)

// Resource URNs (token `aud`, DESIGN §5.1).
const (
	ResourceGitHub = "urn:ajwt:resource:github"
	ResourceOSV    = "urn:ajwt:resource:osv"
)

// Scopes (DESIGN §5.3).
const (
	ScopeRepoRead  = "repo:read"
	ScopeRepoWrite = "repo:write"
	ScopeVulnsRead = "vulns:read"
	ScopeAdmin     = "ajwt:admin"
)

// Audience is a JWT `aud`: RFC 7519 §4.1.3 allows a string or an array of strings. We
// always issue a single string.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var arr []string
	if err := json.Unmarshal(b, &arr); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = arr
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// Contains reports whether aud names v.
func (a Audience) Contains(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// Confirmation is the RFC 7800 `cnf` claim with the RFC 9449 `jkt` member.
type Confirmation struct {
	JKT string `json:"jkt"`
}

// AgentProof is the `agent_proof` claim of an intent token (DESIGN §5.4).
type AgentProof struct {
	AgentChecksum  string `json:"agent_checksum"`
	RegistrationID string `json:"registration_id"`
	Version        int    `json:"version"`
	InstanceID     string `json:"instance_id"`
	ShimChecksum   string `json:"shim_checksum"`
}

// Operation is one permitted request: method, path template (or filled path) and,
// optionally, top-level JSON body members that must be present and equal.
type Operation struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	JSON   map[string]string `json:"json,omitempty"`
}

// Intent is the `intent` claim: the execution, workflow step, user and delegation chain
// a token is bound to, and the operations it permits.
type Intent struct {
	ExecutionID     string      `json:"execution_id"`
	WorkflowID      string      `json:"workflow_id"`
	WorkflowVersion int         `json:"workflow_version"`
	StepID          string      `json:"step_id"`
	Action          string      `json:"action"`
	User            string      `json:"user"`
	IntentHash      string      `json:"intent_hash"`
	DelegationChain []string    `json:"delegation_chain"`
	ChainHash       string      `json:"chain_hash"`
	Operations      []Operation `json:"operations"`
}

// RegisteredClaims are the RFC 7519 claims common to our JWTs.
type RegisteredClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	Expiry    int64    `json:"exp"`
	JTI       string   `json:"jti"`
}

// IntentClaims is the payload of an A-JWT intent token (`typ: ajwt+jwt`, DESIGN §5.4).
type IntentClaims struct {
	RegisteredClaims
	ClientID   string        `json:"client_id"`
	Scope      string        `json:"scope"`
	Cnf        *Confirmation `json:"cnf,omitempty"`
	AgentProof *AgentProof   `json:"agent_proof,omitempty"`
	Intent     *Intent       `json:"intent,omitempty"`
}

// AccessClaims is the payload of a plain RFC 9068 access token (`typ: at+jwt`): the
// admin token and the baseline's resource tokens. Cnf is only decoded so that a
// DPoP-bound token can be refused as a bearer token (RFC 9449 §7.2).
type AccessClaims struct {
	RegisteredClaims
	ClientID string        `json:"client_id"`
	Scope    string        `json:"scope"`
	Cnf      *Confirmation `json:"cnf,omitempty"`
}

// DelegationClaims is the payload of a delegation assertion (`typ:
// ajwt-delegation+jwt`, DESIGN §5.5). The root carries `user`; links carry `prev`.
type DelegationClaims struct {
	Issuer      string        `json:"iss"`
	Subject     string        `json:"sub"`
	User        string        `json:"user,omitempty"`
	ExecutionID string        `json:"execution_id"`
	Steps       []string      `json:"steps"`
	Prev        string        `json:"prev,omitempty"`
	IssuedAt    int64         `json:"iat"`
	Expiry      int64         `json:"exp"`
	JTI         string        `json:"jti"`
	Cnf         *Confirmation `json:"cnf,omitempty"`
}

// DPoPClaims is the payload of a DPoP proof (RFC 9449 §4.2).
type DPoPClaims struct {
	JTI      string `json:"jti"`
	HTM      string `json:"htm"`
	HTU      string `json:"htu"`
	IssuedAt int64  `json:"iat"`
	ATH      string `json:"ath,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
}

// AgentSubject is the `sub` of an agent ("agent:<id>").
func AgentSubject(agentID string) string { return "agent:" + agentID }

// UserSubject is the first entry of a delegation chain ("user:<user>").
func UserSubject(user string) string { return "user:" + user }

// ChainHash is "sha256:" + hex of SHA-256 over the JCS array of the delegation JWTs'
// jtis, root first (DESIGN §5.4).
func ChainHash(jtis []string) (string, error) { return JCSDigest(jtis) }
