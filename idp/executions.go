package idp

import (
	"crypto"
	"net/http"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// Limits on execution inputs.
const (
	maxUserBytes   = 256
	maxIntentBytes = 4096
)

// handleStartExecution is POST /v1/executions (app).
func (s *Server) handleStartExecution(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApp)
	if err != nil {
		return err
	}
	var req struct {
		WorkflowID string            `json:"workflow_id"`
		User       string            `json:"user"`
		Intent     string            `json:"intent"`
		Params     map[string]string `json:"params"`
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if req.User == "" || len(req.User) > maxUserBytes || req.Intent == "" || len(req.Intent) > maxIntentBytes {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "user (1..%d bytes) and intent (1..%d bytes) are required", maxUserBytes, maxIntentBytes)
	}
	if !ajwt.ValidParamValue(req.User) {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "user must match [A-Za-z0-9_.-]+")
	}
	intentHash, err := ajwt.JCSDigest(map[string]any{"user": req.User, "intent": req.Intent, "params": req.Params})
	if err != nil {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "intent: %v", err)
	}
	now := s.now()
	ex := &Execution{ExecutionID: "exe-" + ajwt.NewJTI(), ClientID: cl.ClientID, WorkflowID: req.WorkflowID, User: req.User,
		Intent: req.Intent, Params: req.Params, IntentHash: intentHash, RootJTI: ajwt.NewJTI(),
		RootExpiry: now.Add(s.cfg.ExecutionTTL).UTC(), Status: statusOpen, CreatedAt: now.UTC()}
	if ex.Params == nil {
		ex.Params = map[string]string{}
	}
	info(c).executionID = ex.ExecutionID
	var root string
	err = s.update(c, func(w *wtx) error {
		wf, err := latestWorkflow(w, req.WorkflowID)
		if isNotFound(err) {
			return ajwt.NotFound("no such workflow")
		}
		if err != nil {
			return err
		}
		if err := checkParams(cl, wf, ex.Params); err != nil {
			return err
		}
		agents := []string{wf.EntryAgent}
		for _, st := range wf.Steps {
			agents = append(agents, st.Agent)
		}
		for _, id := range agents {
			ag, err := getJSON[Agent](w, tblAgents, id)
			if err != nil && !isNotFound(err) {
				return err
			}
			if err != nil || ag.App != cl.ClientID {
				return ajwt.Forbidden(ajwt.ReasonForbidden, "agent %q of this workflow is not this client's", id)
			}
		}
		ex.WorkflowVersion = wf.Version
		steps := make([]string, len(wf.Steps))
		for i, st := range wf.Steps {
			steps[i] = st.ID
			ex.Steps = append(ex.Steps, &StepState{ID: st.ID, Agent: st.Agent, State: statePending})
		}
		root, err = s.keys.sign(ajwt.TypDelegation, ajwt.DelegationClaims{
			Issuer: s.cfg.Issuer, Subject: ajwt.AgentSubject(wf.EntryAgent), User: ex.User, ExecutionID: ex.ExecutionID,
			Steps: steps, IssuedAt: now.Unix(), Expiry: ex.RootExpiry.Unix(), JTI: ex.RootJTI})
		if err != nil {
			return err
		}
		ex.RootDigest = ajwt.SHA256Digest([]byte(root))
		if err := putJSON(w, tblExecutions, ex.ExecutionID, ex); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, map[string]any{"execution_id": ex.ExecutionID, "workflow_version": ex.WorkflowVersion,
		"intent_hash": ex.IntentHash, "root_delegation": root})
}

// checkParams: every declared param present and no other, values well-formed
// (params_invalid), and allowed by the client's allowed_params (forbidden).
func checkParams(cl *Client, wf *Workflow, params map[string]string) error {
	for _, p := range wf.Params {
		if _, ok := params[p]; !ok {
			return ajwt.BadRequest(ajwt.ReasonParamsInvalid, "param %q is missing", p)
		}
	}
	for k, v := range params {
		if !slices.Contains(wf.Params, k) {
			return ajwt.BadRequest(ajwt.ReasonParamsInvalid, "param %q is not declared by the workflow", trunc(k))
		}
		if !ajwt.ValidParamValue(v) {
			return ajwt.BadRequest(ajwt.ReasonParamsInvalid, "param %q has an invalid value", k)
		}
	}
	for k, patterns := range cl.AllowedParams {
		v, ok := params[k]
		if !ok {
			continue
		}
		allowed := false
		for _, p := range patterns {
			if m, err := path.Match(p, v); err == nil && m {
				allowed = true
				break
			}
		}
		if !allowed {
			return ajwt.Forbidden(ajwt.ReasonForbidden, "param %q value is outside this client's allowed_params", k)
		}
	}
	return nil
}

// executionView is the GET shape of an execution (DESIGN §5.3).
type executionView struct {
	ExecutionID     string            `json:"execution_id"`
	WorkflowID      string            `json:"workflow_id"`
	WorkflowVersion int               `json:"workflow_version"`
	User            string            `json:"user"`
	Intent          string            `json:"intent"`
	Params          map[string]string `json:"params"`
	Status          string            `json:"status"`
	CreatedAt       string            `json:"created_at"`
	Steps           []stepView        `json:"steps"`
	Tokens          []tokenView       `json:"tokens"`
}

type stepView struct {
	ID            string `json:"id"`
	Agent         string `json:"agent"`
	State         string `json:"state"`
	OwnerInstance string `json:"owner_instance"`
	ApprovedBy    string `json:"approved_by"`
	CompletedAt   string `json:"completed_at"`
	ResultDigest  string `json:"result_digest,omitempty"`
}

type tokenView struct {
	JTI       string `json:"jti"`
	StepID    string `json:"step_id"`
	AgentID   string `json:"agent_id"`
	ExpiresAt string `json:"expires_at"`
}

// viewExecutionTokens is viewExecution with the execution's minted tokens.
func viewExecutionTokens(tx Tx, ex *Execution) (executionView, error) {
	v := viewExecution(ex)
	refs, err := listJSON[TokenRef](tx, tblExecTokens, ex.ExecutionID+"/")
	if err != nil {
		return v, err
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].ExpiresAt.Before(refs[j].ExpiresAt) })
	for _, t := range refs {
		v.Tokens = append(v.Tokens, tokenView{JTI: t.JTI, StepID: t.StepID, AgentID: t.AgentID, ExpiresAt: rfc3339(t.ExpiresAt)})
	}
	return v, nil
}

func viewExecution(ex *Execution) executionView {
	v := executionView{ExecutionID: ex.ExecutionID, WorkflowID: ex.WorkflowID, WorkflowVersion: ex.WorkflowVersion, User: ex.User,
		Intent: ex.Intent, Params: ex.Params, Status: ex.Status, CreatedAt: rfc3339(ex.CreatedAt), Steps: []stepView{}, Tokens: []tokenView{}}
	for _, s := range ex.Steps {
		v.Steps = append(v.Steps, stepView{ID: s.ID, Agent: s.Agent, State: s.State, OwnerInstance: s.OwnerInstance, ApprovedBy: s.ApprovedBy, CompletedAt: rfc3339(s.CompletedAt), ResultDigest: s.ResultDigest})
	}
	return v
}

// canRead: the owning client, an approver or admin; everyone else sees 404.
func canRead(cl *Client, ex *Execution) bool {
	return cl.Role == RoleAdmin || cl.Role == RoleApprover || cl.ClientID == ex.ClientID
}

func loadExecution(tx Tx, id string, cl *Client, owner bool) (*Execution, error) {
	ex, err := getJSON[Execution](tx, tblExecutions, id)
	if isNotFound(err) || err == nil && (owner && ex.ClientID != cl.ClientID || !owner && !canRead(cl, ex)) {
		return nil, ajwt.NotFound("no such execution")
	}
	return ex, err
}

// handleGetExecution is GET /v1/executions/{id}.
func (s *Server) handleGetExecution(c echo.Context) error {
	cl, err := s.requireRole(c, RoleAdmin, RoleApprover, RoleApp)
	if err != nil {
		return err
	}
	var view executionView
	if err := s.store.View(c.Request().Context(), func(tx Tx) error {
		ex, err := loadExecution(tx, c.Param("id"), cl, false)
		if err != nil {
			return err
		}
		view, err = viewExecutionTokens(tx, ex)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}

// handleListExecutions is GET /v1/executions: the caller's (all for admin and approver).
func (s *Server) handleListExecutions(c echo.Context) error {
	cl, err := s.requireRole(c, RoleAdmin, RoleApprover, RoleApp)
	if err != nil {
		return err
	}
	var all []*Execution
	if err := s.store.View(c.Request().Context(), func(tx Tx) error {
		all, err = listJSON[Execution](tx, tblExecutions, "")
		return err
	}); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt.Before(all[j].CreatedAt) })
	out := []executionView{}
	for _, ex := range all {
		if canRead(cl, ex) {
			out = append(out, viewExecution(ex))
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"executions": out})
}

// handleApprove is POST /v1/executions/{id}/steps/{step}/approve (approver only).
func (s *Server) handleApprove(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApprover)
	if err != nil {
		return err
	}
	a := info(c)
	a.executionID, a.stepID = trunc(c.Param("id")), trunc(c.Param("step"))
	var view executionView
	err = s.update(c, func(w *wtx) error {
		ex, err := loadExecution(w, c.Param("id"), cl, false)
		if err != nil {
			return err
		}
		if ex.Status != statusOpen {
			return ajwt.Conflict(ajwt.ReasonExecutionClosed, "execution is closed")
		}
		wf, err := getJSON[Workflow](w, tblWorkflows, workflowKey(ex.WorkflowID, ex.WorkflowVersion))
		if err != nil {
			return err
		}
		def, st := wf.Step(c.Param("step")), ex.Step(c.Param("step"))
		if def == nil || st == nil {
			return ajwt.NewError(http.StatusNotFound, ajwt.CodeNotFound, ajwt.ReasonStepUnknown, "no such step")
		}
		if def.Approval != approvalRequired {
			return ajwt.Conflict(ajwt.ReasonInvalidRequest, "step does not need approval")
		}
		view = viewExecution(ex)
		if st.ApprovedBy != "" {
			return nil
		}
		st.ApprovedBy = cl.ClientID
		view = viewExecution(ex)
		if err := putJSON(w, tblExecutions, ex.ExecutionID, ex); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}

// handleComplete is POST /v1/executions/{id}/steps/{step}/complete with a DPoP proof
// signed by the step's owner instance. Completing a step revokes its tokens; completing
// the last step closes the execution.
func (s *Server) handleComplete(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApp)
	if err != nil {
		return err
	}
	var req struct {
		ResultDigest string `json:"result_digest"`
	}
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	if req.ResultDigest != "" && !validDigest(req.ResultDigest) {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "result_digest must be sha256:<64 lowercase hex>")
	}
	a := info(c)
	a.executionID, a.stepID = trunc(c.Param("id")), trunc(c.Param("step"))
	ctx := c.Request().Context()
	// Existence, ownership and state first, so the answers are 404/409 as specified; the
	// transaction below re-checks them.
	var owner string
	if err := s.store.View(ctx, func(tx Tx) error {
		ex, err := loadExecution(tx, c.Param("id"), cl, true)
		if err != nil {
			return err
		}
		if st := ex.Step(c.Param("step")); st != nil {
			owner = st.OwnerInstance
		}
		return checkCompletable(ex, c.Param("step"))
	}); err != nil {
		return err
	}
	proof, err := s.dpop.Verify(ctx, ajwt.DPoPCheck{
		Values: c.Request().Header.Values("DPoP"), Method: http.MethodPost, HTU: s.cfg.Issuer + c.Request().URL.EscapedPath(),
		KeyCheck: func(jkt string, _ crypto.PublicKey) error {
			return s.store.View(ctx, func(tx Tx) error {
				inst, err := lookupInstanceByKey(tx, jkt)
				if err != nil {
					return err
				}
				if inst == nil || inst.Status != statusActive || inst.InstanceID != owner {
					return ajwt.Forbidden(ajwt.ReasonStepNotOwned, "the proof is not signed by the step's owner instance")
				}
				return nil
			})
		},
	})
	if err != nil {
		return idpDPoPError(err)
	}
	a.instanceID = owner
	var view executionView
	err = s.update(c, func(w *wtx) error {
		ex, err := loadExecution(w, c.Param("id"), cl, true)
		if err != nil {
			return err
		}
		if err := checkCompletable(ex, c.Param("step")); err != nil {
			return err
		}
		st := ex.Step(c.Param("step"))
		if st.OwnerInstance != owner {
			return ajwt.Forbidden(ajwt.ReasonStepNotOwned, "the step changed owner")
		}
		view = viewExecution(ex)
		if st.State == stateComplete {
			return nil
		}
		if inst, err := lookupInstanceByKey(w, proof.JKT); err != nil || inst == nil || inst.Status != statusActive {
			return ajwt.Forbidden(ajwt.ReasonStepNotOwned, "owner instance is no longer live")
		}
		now := s.now()
		st.State, st.CompletedAt, st.ResultDigest = stateComplete, now.UTC(), req.ResultDigest
		if err := s.revoke(w, RevokeStep, ex.ExecutionID+"/"+st.ID, s.untilTokens()); err != nil {
			return err
		}
		all := true
		for _, x := range ex.Steps {
			all = all && x.State == stateComplete
		}
		if all {
			if err := s.closeExecution(w, ex, now); err != nil {
				return err
			}
		}
		view = viewExecution(ex)
		if err := putJSON(w, tblExecutions, ex.ExecutionID, ex); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}

// checkCompletable: the execution is open, the step exists and is not pending.
func checkCompletable(ex *Execution, stepID string) error {
	st := ex.Step(stepID)
	if st == nil {
		return ajwt.NewError(http.StatusNotFound, ajwt.CodeNotFound, ajwt.ReasonStepUnknown, "no such step")
	}
	if st.State == stateComplete {
		return nil
	}
	if ex.Status != statusOpen {
		return ajwt.Conflict(ajwt.ReasonExecutionClosed, "execution is closed")
	}
	if st.State == statePending {
		return ajwt.Conflict(ajwt.ReasonStepNotActive, "step has not started")
	}
	return nil
}

func (s *Server) closeExecution(w *wtx, ex *Execution, now time.Time) error {
	ex.Status, ex.ClosedAt = statusClosed, now.UTC()
	return s.revoke(w, RevokeExecution, ex.ExecutionID, s.untilTokens())
}

// handleClose is POST /v1/executions/{id}/close (the owning app or admin).
func (s *Server) handleClose(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApp, RoleAdmin)
	if err != nil {
		return err
	}
	info(c).executionID = trunc(c.Param("id"))
	var view executionView
	err = s.update(c, func(w *wtx) error {
		ex, err := loadExecution(w, c.Param("id"), cl, cl.Role != RoleAdmin)
		if err != nil {
			return err
		}
		if ex.Status == statusClosed {
			view = viewExecution(ex)
			return nil
		}
		if err := s.closeExecution(w, ex, s.now()); err != nil {
			return err
		}
		view = viewExecution(ex)
		if err := putJSON(w, tblExecutions, ex.ExecutionID, ex); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}
