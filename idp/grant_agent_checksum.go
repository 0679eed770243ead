package idp

import (
	"crypto"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// AgentChecksumHandler implements the agent_checksum grant (DESIGN §5.3): a DPoP-bound
// intent token for one step of one execution, minted for an enrolled agent instance.
type AgentChecksumHandler struct{ s *Server }

var _ TokenHandler = (*AgentChecksumHandler)(nil)

// CanHandle implements TokenHandler.
func (h *AgentChecksumHandler) CanHandle(gt string) bool { return gt == GrantAgentChecksum }

func grantErr(reason ajwt.Reason, format string, args ...any) *ajwt.Error {
	return ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidGrant, reason, format, args...)
}

// idpDPoPError maps a DPoPVerifier error to the IDP's shape (§5.1): 400
// invalid_dpop_proof with reason dpop_missing, dpop_replay or dpop_invalid; the cache-full
// 503 and the typed errors of our own key checks pass through.
func idpDPoPError(err error) error {
	var ae *ajwt.Error
	if !errors.As(err, &ae) || ae.Code != ajwt.CodeInvalidDPoPProof && ae.Code != ajwt.CodeUseDPoPNonce {
		return err
	}
	out := *ae
	out.Status = http.StatusBadRequest
	switch ae.Reason {
	case ajwt.ReasonDPoPMissing, ajwt.ReasonDPoPReplay, ajwt.ReasonDPoPNonce:
	default:
		out.Reason = ajwt.ReasonDPoPInvalid
	}
	return &out
}

// lookupInstanceByKey returns the live instance enrolled with jkt, or nil.
func lookupInstanceByKey(tx Tx, jkt string) (*Instance, error) {
	id, err := tx.Get(tblInstanceKey, jkt)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inst, err := getJSON[Instance](tx, tblInstances, string(id))
	if err != nil {
		return nil, err
	}
	return inst, nil
}

// Handle implements TokenHandler. The checks run in the order DESIGN §5.3 lists them,
// all inside one write transaction, so agent, instance, execution, step and approval
// state are one consistent snapshot and a close, completion or revocation that
// committed first is always seen.
func (h *AgentChecksumHandler) Handle(c echo.Context, cl *Client, f form) (*TokenResponse, error) {
	if err := f.require("agent_id", "agent_checksum", "execution_id", "step_id", "resource"); err != nil {
		return nil, err
	}
	a := info(c)
	a.agentID, a.executionID, a.stepID = trunc(f["agent_id"]), trunc(f["execution_id"]), trunc(f["step_id"])
	var resp *TokenResponse
	err := h.s.update(c, func(w *wtx) error {
		var err error
		resp, err = h.mint(w, cl, f)
		return err
	})
	return resp, err
}

func (h *AgentChecksumHandler) mint(w *wtx, cl *Client, f form) (*TokenResponse, error) {
	s := h.s
	agentID, execID, stepID := f["agent_id"], f["execution_id"], f["step_id"]
	// Agent known, not revoked, and this client is its app.
	agent, err := getJSON[Agent](w, tblAgents, agentID)
	if isNotFound(err) {
		return nil, grantErr(ajwt.ReasonUnknownAgent, "unknown agent")
	}
	if err != nil {
		return nil, err
	}
	if agent.Status == statusRevoked {
		return nil, grantErr(ajwt.ReasonAgentRevoked, "agent is revoked")
	}
	if agent.App != cl.ClientID {
		return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeUnauthorizedClient, ajwt.ReasonForbidden, "client is not this agent's app")
	}
	// DPoP proof whose key is an enrolled, unrevoked instance of this agent.
	var inst *Instance
	proof, err := s.dpop.Verify(w.c.Request().Context(), ajwt.DPoPCheck{
		Values: w.c.Request().Header.Values("DPoP"), Method: http.MethodPost, HTU: s.cfg.Issuer + "/oauth2/token",
		KeyCheck: func(jkt string, _ crypto.PublicKey) error {
			var err error
			if inst, err = lookupInstanceByKey(w, jkt); err != nil {
				return err
			}
			if inst == nil || inst.Status != statusActive {
				return grantErr(ajwt.ReasonInstanceUnknown, "the DPoP key is not an enrolled, live instance")
			}
			if inst.AgentID != agentID {
				return grantErr(ajwt.ReasonInstanceKeyMismatch, "the DPoP key belongs to an instance of another agent")
			}
			return nil
		},
	})
	if err != nil {
		return nil, idpDPoPError(err)
	}
	jkt, instanceID := proof.JKT, inst.InstanceID
	info(w.c).instanceID = instanceID
	now := s.now()
	// The reported checksum equals the enrolled one, and that version is still active.
	active := agent.Active()
	if f["agent_checksum"] != inst.Checksum || active == nil || active.Version != inst.Version {
		return nil, grantErr(ajwt.ReasonChecksumMismatch, "agent checksum does not match the registered, active definition")
	}
	// Execution exists, is this client's and is open.
	ex, err := getJSON[Execution](w, tblExecutions, execID)
	if isNotFound(err) || err == nil && ex.ClientID != cl.ClientID {
		return nil, grantErr(ajwt.ReasonExecutionUnknown, "unknown execution")
	}
	if err != nil {
		return nil, err
	}
	if ex.Status != statusOpen {
		return nil, grantErr(ajwt.ReasonExecutionClosed, "execution is closed")
	}
	wf, err := s.workflow(w, ex.WorkflowID, ex.WorkflowVersion)
	if err != nil {
		return nil, err
	}
	// Step exists, is the caller's, for this resource.
	def := wf.Step(stepID)
	st := ex.Step(stepID)
	if def == nil || st == nil {
		return nil, grantErr(ajwt.ReasonStepUnknown, "the workflow has no such step")
	}
	if def.Agent != agentID {
		return nil, grantErr(ajwt.ReasonWrongAgentForStep, "step belongs to another agent")
	}
	if def.Resource != f["resource"] {
		return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidTarget, ajwt.ReasonResourceMismatch, "step's resource is not the one requested")
	}
	// Pending, or active and owned by this instance.
	switch {
	case st.State == stateComplete:
		return nil, grantErr(ajwt.ReasonStepComplete, "step is complete")
	case st.State == stateActive && st.OwnerInstance != instanceID:
		return nil, grantErr(ajwt.ReasonStepNotOwned, "step is active under another instance")
	}
	// Dependencies complete in the AS's records.
	for _, dep := range def.DependsOn {
		if ds := ex.Step(dep); ds == nil || ds.State != stateComplete {
			return nil, grantErr(ajwt.ReasonDependencyIncomplete, "step %q must complete first", dep)
		}
	}
	if def.Approval == approvalRequired && st.ApprovedBy == "" {
		return nil, grantErr(ajwt.ReasonApprovalRequired, "step needs an approver's approval")
	}
	// Requested scopes ⊆ step scopes ∩ agent max_scopes.
	scopes := ajwt.ParseScope(f["scope"])
	if len(scopes) == 0 {
		scopes = def.Scopes
	}
	for _, sc := range scopes {
		if !slices.Contains(def.Scopes, sc) || !slices.Contains(agent.MaxScopes, sc) {
			return nil, ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidScope, ajwt.ReasonScopeExceedsStep, "scope %q exceeds the step's scopes", trunc(sc))
		}
	}
	// Delegation chain (§5.5).
	if f["delegation_chain"] == "" {
		return nil, grantErr(ajwt.ReasonDelegationMissing, "delegation_chain is required")
	}
	chain, err := s.verifyChain(w, ex, wf, agentID, stepID, jkt, f["delegation_chain"])
	if err != nil {
		return nil, err
	}
	values := stepValues(ex)
	ops := make([]ajwt.Operation, len(def.Operations))
	for i, op := range def.Operations {
		if ops[i], err = op.Fill(values); err != nil {
			return nil, err
		}
	}
	chainHash, err := ajwt.ChainHash(chain.jtis)
	if err != nil {
		return nil, err
	}
	exp := now.Add(s.cfg.TokenTTL)
	claims := ajwt.IntentClaims{
		RegisteredClaims: ajwt.RegisteredClaims{Issuer: s.cfg.Issuer, Subject: ajwt.AgentSubject(agentID), Audience: ajwt.Audience{def.Resource},
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: exp.Unix(), JTI: ajwt.NewJTI()},
		ClientID: cl.ClientID, Scope: strings.Join(scopes, " "), Cnf: &ajwt.Confirmation{JKT: jkt},
		AgentProof: &ajwt.AgentProof{AgentChecksum: inst.Checksum, RegistrationID: inst.RegistrationID, Version: inst.Version,
			InstanceID: inst.InstanceID, ShimChecksum: inst.ShimChecksum},
		Intent: &ajwt.Intent{ExecutionID: ex.ExecutionID, WorkflowID: wf.WorkflowID, WorkflowVersion: wf.Version,
			StepID: def.ID, Action: def.Action, User: ex.User, IntentHash: ex.IntentHash,
			DelegationChain: chain.subjects, ChainHash: chainHash, Operations: ops},
	}
	tok, err := s.keys.sign(ajwt.TypIntent, claims)
	if err != nil {
		return nil, err
	}
	if st.State == statePending {
		st.State, st.OwnerInstance = stateActive, instanceID
		if err := putJSON(w, tblExecutions, ex.ExecutionID, ex); err != nil {
			return nil, err
		}
	}
	ref := TokenRef{JTI: claims.JTI, StepID: stepID, AgentID: agentID, ExpiresAt: exp.UTC()}
	if err := putJSON(w, tblExecTokens, ex.ExecutionID+"/"+claims.JTI, &ref); err != nil {
		return nil, err
	}
	info(w.c).jti, info(w.c).chainHash = claims.JTI, chainHash
	if err := w.allow(""); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "DPoP", ExpiresIn: int64(s.cfg.TokenTTL.Seconds()), Scope: claims.Scope}, nil
}

// stepValues are the template values of an execution: its params and {branch}.
func stepValues(ex *Execution) map[string]string {
	v := make(map[string]string, len(ex.Params)+1)
	for k, p := range ex.Params {
		v[k] = p
	}
	v["branch"] = BranchName(ex.ExecutionID)
	return v
}

// BranchName is the `{branch}` of an execution: "ajwt/<execution_id>".
func BranchName(executionID string) string { return "ajwt/" + executionID }
