package idp

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// Approval values of a workflow step.
const (
	approvalNone     = "none"
	approvalRequired = "required"
)

// Limits on workflow definitions.
const (
	maxSteps        = 64
	maxOpsPerStep   = 32
	maxDelegDepth   = 8
	maxParams       = 16
	maxDescBytes    = 1024
	maxScopesOnStep = 8
)

func workflowKey(id string, version int) string { return fmt.Sprintf("%s/%08d", id, version) }

// workflowRequest is the body of POST /v1/workflows.
type workflowRequest struct {
	WorkflowID         string         `json:"workflow_id"`
	Description        string         `json:"description"`
	EntryAgent         string         `json:"entry_agent"`
	MaxDelegationDepth int            `json:"max_delegation_depth"`
	Params             []string       `json:"params"`
	Steps              []WorkflowStep `json:"steps"`
}

func wfInvalid(format string, args ...any) *ajwt.Error {
	return ajwt.BadRequest(ajwt.ReasonWorkflowInvalid, format, args...)
}

func validParamName(p string) bool {
	if p == "" || len(p) > 32 || p == "branch" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validateWorkflow applies every check of DESIGN §5.3 against the registered agents
// (read in tx) and normalises defaults (action = step id, approval = none).
func validateWorkflow(tx Tx, req *workflowRequest) error {
	if !ajwt.ValidID(req.WorkflowID) {
		return wfInvalid("workflow_id must match [a-z0-9][a-z0-9_.-]{0,63}")
	}
	if len(req.Description) > maxDescBytes {
		return wfInvalid("description exceeds %d bytes", maxDescBytes)
	}
	if req.MaxDelegationDepth < 0 || req.MaxDelegationDepth > maxDelegDepth {
		return wfInvalid("max_delegation_depth must be 0..%d", maxDelegDepth)
	}
	if len(req.Steps) == 0 || len(req.Steps) > maxSteps {
		return wfInvalid("a workflow has 1..%d steps", maxSteps)
	}
	if len(req.Params) > maxParams {
		return wfInvalid("at most %d params", maxParams)
	}
	declared := map[string]bool{"branch": true}
	for _, p := range req.Params {
		if !validParamName(p) {
			return wfInvalid("param %q: names are [a-z_][a-z0-9_]*, not \"branch\"", trunc(p))
		}
		if declared[p] {
			return wfInvalid("param %q declared twice", p)
		}
		declared[p] = true
	}
	agents := map[string]*Agent{}
	loadAgent := func(id string) (*Agent, error) {
		if a, ok := agents[id]; ok {
			return a, nil
		}
		a, err := getJSON[Agent](tx, tblAgents, id)
		if isNotFound(err) || err == nil && a.Status != statusActive {
			return nil, wfInvalid("unknown agent %q", trunc(id))
		}
		if err != nil {
			return nil, err
		}
		agents[id] = a
		return a, nil
	}
	if _, err := loadAgent(req.EntryAgent); err != nil {
		return err
	}
	ids := map[string]int{}
	for i := range req.Steps {
		st := &req.Steps[i]
		if !ajwt.ValidID(st.ID) {
			return wfInvalid("step %d: id must match [a-z0-9][a-z0-9_.-]{0,63}", i)
		}
		if _, dup := ids[st.ID]; dup {
			return wfInvalid("step %q is declared twice", st.ID)
		}
		ids[st.ID] = i
		if st.Action == "" {
			st.Action = st.ID
		}
		if !ajwt.ValidID(st.Action) {
			return wfInvalid("step %q: bad action", st.ID)
		}
		switch st.Approval {
		case "":
			st.Approval = approvalNone
		case approvalNone, approvalRequired:
		default:
			return wfInvalid("step %q: unknown approval value %q", st.ID, trunc(st.Approval))
		}
		ag, err := loadAgent(st.Agent)
		if err != nil {
			return err
		}
		if st.Resource != ajwt.ResourceGitHub && st.Resource != ajwt.ResourceOSV {
			return wfInvalid("step %q: resource must be %s or %s", st.ID, ajwt.ResourceGitHub, ajwt.ResourceOSV)
		}
		if len(st.Scopes) == 0 || len(st.Scopes) > maxScopesOnStep {
			return wfInvalid("step %q: 1..%d scopes", st.ID, maxScopesOnStep)
		}
		for _, sc := range st.Scopes {
			if !ajwt.ValidResourceScope(st.Resource, sc) {
				return wfInvalid("step %q: scope %q is not valid for its resource", st.ID, trunc(sc))
			}
			if !slices.Contains(ag.MaxScopes, sc) {
				return wfInvalid("step %q: scope %q is outside agent %s's max_scopes", st.ID, sc, ag.AgentID)
			}
		}
		if len(st.Operations) == 0 || len(st.Operations) > maxOpsPerStep {
			return wfInvalid("step %q: 1..%d operations", st.ID, maxOpsPerStep)
		}
		for j, op := range st.Operations {
			if err := validateOperation(op, declared); err != nil {
				return wfInvalid("step %q operation %d: %v", st.ID, j, err)
			}
			if !ajwt.ScopeCovers(st.Resource, st.Scopes, op.Method) {
				return wfInvalid("step %q operation %d: %s is not covered by the step's scopes", st.ID, j, op.Method)
			}
		}
	}
	// Dependencies: known, and no cycle (Kahn's algorithm).
	indeg := make([]int, len(req.Steps))
	for i, st := range req.Steps {
		for _, d := range st.DependsOn {
			if _, ok := ids[d]; !ok {
				return wfInvalid("step %q depends on unknown step %q", st.ID, trunc(d))
			}
			if d == st.ID {
				return wfInvalid("step %q depends on itself", st.ID)
			}
		}
		indeg[i] = len(st.DependsOn)
	}
	done := 0
	queue := []int{}
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		done++
		for i, st := range req.Steps {
			for _, d := range st.DependsOn {
				if d == req.Steps[cur].ID {
					indeg[i]--
					if indeg[i] == 0 {
						queue = append(queue, i)
					}
				}
			}
		}
	}
	if done != len(req.Steps) {
		return wfInvalid("the step dependencies form a cycle")
	}
	return nil
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func validateOperation(op ajwt.Operation, declared map[string]bool) error {
	if !slices.Contains(methods, op.Method) {
		return fmt.Errorf("method %q not allowed", trunc(op.Method))
	}
	params, err := ajwt.TemplateParams(op.Path)
	if err != nil {
		return err
	}
	for _, p := range params {
		if !declared[p] {
			return fmt.Errorf("path names undeclared param %q", p)
		}
	}
	if len(op.JSON) > 0 && (op.Method == http.MethodGet || op.Method == http.MethodHead) {
		return fmt.Errorf("json members need a method with a body")
	}
	sample := map[string]string{}
	for p := range declared {
		sample[p] = "x"
	}
	for k, v := range op.JSON {
		if k == "" || len(k) > 64 || len(v) > 256 {
			return fmt.Errorf("json member %q is malformed", trunc(k))
		}
		if _, err := (ajwt.Operation{Method: op.Method, Path: op.Path, JSON: map[string]string{k: v}}).Fill(sample); err != nil {
			return fmt.Errorf("json member %q: %v", trunc(k), err)
		}
	}
	return nil
}

// handleRegisterWorkflow is POST /v1/workflows (admin): a new immutable version.
func (s *Server) handleRegisterWorkflow(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	var req workflowRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	var wf *Workflow
	err := s.update(c, func(w *wtx) error {
		if err := validateWorkflow(w, &req); err != nil {
			return err
		}
		prev, err := listJSON[Workflow](w, tblWorkflows, req.WorkflowID+"/")
		if err != nil {
			return err
		}
		if req.Params == nil {
			req.Params = []string{}
		}
		wf = &Workflow{WorkflowID: req.WorkflowID, Version: len(prev) + 1, Description: req.Description, EntryAgent: req.EntryAgent,
			MaxDelegationDepth: req.MaxDelegationDepth, Params: req.Params, Steps: req.Steps, RegisteredAt: s.now().UTC()}
		if err := putJSON(w, tblWorkflows, workflowKey(wf.WorkflowID, wf.Version), wf); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, map[string]any{"workflow_id": wf.WorkflowID, "version": wf.Version})
}

// workflow returns one version of a workflow. Versions are immutable, so they are
// cached after the first read (the cached value is shared: never modify it).
func (s *Server) workflow(tx Tx, id string, version int) (*Workflow, error) {
	key := workflowKey(id, version)
	if wf, ok := s.workflows.Load(key); ok {
		return wf.(*Workflow), nil
	}
	wf, err := getJSON[Workflow](tx, tblWorkflows, key)
	if err != nil {
		return nil, err
	}
	s.workflows.Store(key, wf)
	return wf, nil
}

// latestWorkflow returns the newest version of a workflow.
func latestWorkflow(tx Tx, id string) (*Workflow, error) {
	all, err := listJSON[Workflow](tx, tblWorkflows, id+"/")
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, ErrNotFound
	}
	return all[len(all)-1], nil
}

// handleListWorkflows is GET /v1/workflows (any authenticated client but resource).
func (s *Server) handleListWorkflows(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleApp, RoleApprover); err != nil {
		return err
	}
	var all []*Workflow
	if err := s.store.View(c.Request().Context(), func(tx Tx) error {
		var err error
		all, err = listJSON[Workflow](tx, tblWorkflows, "")
		return err
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"workflows": all})
}

// handleGetWorkflow is GET /v1/workflows/{id}[?version=N].
func (s *Server) handleGetWorkflow(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleApp, RoleApprover); err != nil {
		return err
	}
	id := c.Param("id")
	var wf *Workflow
	err := s.store.View(c.Request().Context(), func(tx Tx) error {
		var err error
		if v := c.QueryParam("version"); v != "" {
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 {
				return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "version must be a positive integer")
			}
			wf, err = getJSON[Workflow](tx, tblWorkflows, workflowKey(id, n))
			return err
		}
		wf, err = latestWorkflow(tx, id)
		return err
	})
	if isNotFound(err) {
		return ajwt.NotFound("no such workflow")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, wf)
}
