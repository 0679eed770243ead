package idp

import (
	"crypto"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// registerAgentRequest is the body of POST /v1/agents.
type registerAgentRequest struct {
	AgentID     string           `json:"agent_id"`
	Description string           `json:"description"`
	Prompt      string           `json:"prompt"`
	Tools       []ajwt.Tool      `json:"tools"`
	Config      ajwt.ModelConfig `json:"config"`
	App         string           `json:"app"`
	MaxScopes   []string         `json:"max_scopes"`
}

var knownScopes = []string{ajwt.ScopeRepoRead, ajwt.ScopeRepoWrite, ajwt.ScopeVulnsRead}

func validScopes(scopes []string) bool {
	for _, s := range scopes {
		if !slices.Contains(knownScopes, s) {
			return false
		}
	}
	return true
}

// handleRegisterAgent is POST /v1/agents (admin). The IDP computes the checksum itself.
func (s *Server) handleRegisterAgent(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	var req registerAgentRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	info(c).agentID = trunc(req.AgentID)
	def := &ajwt.AgentDefinition{AgentID: req.AgentID, Prompt: req.Prompt, Tools: req.Tools, Config: req.Config}
	if err := ajwt.ValidateDefinition(def); err != nil {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "agent definition: %v", err)
	}
	if len(req.Description) > 1024 {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "description exceeds 1024 bytes")
	}
	if !validScopes(req.MaxScopes) {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "max_scopes may hold only %s", strings.Join(knownScopes, ", "))
	}
	if app, ok := s.clients[req.App]; !ok || app.Role != RoleApp {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "app must name an app client")
	}
	sum, err := ajwt.Checksum(def)
	if err != nil {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "agent definition: %v", err)
	}
	canon, err := ajwt.CanonicalDefinition(def, false)
	if err != nil {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "agent definition: %v", err)
	}
	dupKey := ajwt.SHA256Digest(canon)
	status := http.StatusCreated
	var out map[string]any
	err = s.update(c, func(w *wtx) error {
		if owner, err := w.Get(tblAgentDup, dupKey); err == nil && string(owner) != req.AgentID {
			return ajwt.Conflict(ajwt.ReasonDuplicateChecksum, "the same definition is registered as another agent")
		} else if err != nil && !isNotFound(err) {
			return err
		}
		ag, err := getJSON[Agent](w, tblAgents, req.AgentID)
		switch {
		case isNotFound(err):
			ag = &Agent{AgentID: req.AgentID, Status: statusActive}
		case err != nil:
			return err
		case ag.Status == statusRevoked:
			return ajwt.Conflict(ajwt.ReasonAgentRevoked, "agent is revoked; register it under a new id")
		}
		if cur := ag.Active(); cur != nil && cur.Checksum == sum {
			status = http.StatusOK
			out = map[string]any{"agent_id": ag.AgentID, "version": cur.Version, "registration_id": cur.RegistrationID, "checksum": cur.Checksum}
			return nil
		}
		// New version: supersede the old one and revoke every instance enrolled under it.
		for _, v := range ag.Versions {
			if v.Status == statusActive {
				v.Status = statusSuperseded
				if err := w.Delete(tblAgentDup, v.DupKey); err != nil {
					return err
				}
			}
		}
		if err := s.revokeInstances(w, ag.AgentID); err != nil {
			return err
		}
		v := &AgentVersion{Version: len(ag.Versions) + 1, Checksum: sum, RegistrationID: ajwt.NewJTI(), Status: statusActive,
			RegisteredAt: s.now().UTC(), DupKey: dupKey}
		ag.Versions = append(ag.Versions, v)
		if err := putJSON(w, tblAgentDefs, agentDefKey(ag.AgentID, v.Version), def); err != nil {
			return err
		}
		ag.Description, ag.App, ag.MaxScopes = req.Description, req.App, req.MaxScopes
		if err := putJSON(w, tblAgents, ag.AgentID, ag); err != nil {
			return err
		}
		if err := w.Put(tblAgentDup, dupKey, []byte(ag.AgentID)); err != nil {
			return err
		}
		out = map[string]any{"agent_id": ag.AgentID, "version": v.Version, "registration_id": v.RegistrationID, "checksum": v.Checksum}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, status, out)
}

// revokeInstances revokes every live instance of an agent.
func (s *Server) revokeInstances(w *wtx, agentID string) error {
	insts, err := listJSON[Instance](w, tblInstances, agentID+"/")
	if err != nil {
		return err
	}
	for _, in := range insts {
		if in.Status != statusActive {
			continue
		}
		in.Status = statusRevoked
		if err := putJSON(w, tblInstances, instKey(in.AgentID, in.InstanceID), in); err != nil {
			return err
		}
		if err := s.revoke(w, RevokeInstance, in.InstanceID, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// agentView is the public shape of an agent (DESIGN §5.3); the definition only with
// ?include=definition and admin scope (T12).
type agentView struct {
	AgentID   string        `json:"agent_id"`
	App       string        `json:"app"`
	MaxScopes []string      `json:"max_scopes"`
	Status    string        `json:"status"`
	Versions  []versionView `json:"versions"`
}

type versionView struct {
	Version        int                   `json:"version"`
	Checksum       string                `json:"checksum"`
	RegistrationID string                `json:"registration_id"`
	Status         string                `json:"status"`
	RegisteredAt   string                `json:"registered_at"`
	Definition     *ajwt.AgentDefinition `json:"definition,omitempty"`
}

// viewAgentDefs is viewAgent with each version's definition read from tx.
func viewAgentDefs(tx Tx, a *Agent) (agentView, error) {
	v := viewAgent(a)
	for i := range v.Versions {
		d, err := getJSON[ajwt.AgentDefinition](tx, tblAgentDefs, agentDefKey(a.AgentID, v.Versions[i].Version))
		if err != nil {
			return v, err
		}
		v.Versions[i].Definition = d
	}
	return v, nil
}

func viewAgent(a *Agent) agentView {
	v := agentView{AgentID: a.AgentID, App: a.App, MaxScopes: a.MaxScopes, Status: a.Status}
	if v.MaxScopes == nil {
		v.MaxScopes = []string{}
	}
	for _, ver := range a.Versions {
		vv := versionView{Version: ver.Version, Checksum: ver.Checksum, RegistrationID: ver.RegistrationID, Status: ver.Status, RegisteredAt: rfc3339(ver.RegisteredAt)}
		if a.Status == statusRevoked {
			vv.Status = statusRevoked
		}
		v.Versions = append(v.Versions, vv)
	}
	return v
}

// includeDefinition decides T12: prompts and tools only for admin.
func includeDefinition(c echo.Context, cl *Client) (bool, error) {
	switch inc := c.QueryParam("include"); inc {
	case "":
		return false, nil
	case "definition":
		if cl.Role != RoleAdmin {
			return false, ajwt.Forbidden(ajwt.ReasonForbidden, "agent definitions are visible to admin only")
		}
		return true, nil
	default:
		return false, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "unknown include value")
	}
}

// handleListAgents is GET /v1/agents (admin; an app sees its own agents).
func (s *Server) handleListAgents(c echo.Context) error {
	cl, err := s.requireRole(c, RoleAdmin, RoleApp)
	if err != nil {
		return err
	}
	withDef, err := includeDefinition(c, cl)
	if err != nil {
		return err
	}
	out := []agentView{}
	if err := s.store.View(c.Request().Context(), func(tx Tx) error {
		agents, err := listJSON[Agent](tx, tblAgents, "")
		if err != nil {
			return err
		}
		for _, a := range agents {
			if cl.Role != RoleAdmin && a.App != cl.ClientID {
				continue
			}
			v := viewAgent(a)
			if withDef {
				if v, err = viewAgentDefs(tx, a); err != nil {
					return err
				}
			}
			out = append(out, v)
		}
		return nil
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"agents": out})
}

// loadAgentFor reads an agent visible to cl (admin, or the agent's app); others get 404.
func (s *Server) loadAgentFor(c echo.Context, cl *Client) (*Agent, error) {
	id := c.Param("id")
	info(c).agentID = trunc(id)
	var ag *Agent
	err := s.store.View(c.Request().Context(), func(tx Tx) error {
		var err error
		ag, err = getJSON[Agent](tx, tblAgents, id)
		return err
	})
	if isNotFound(err) || err == nil && cl.Role != RoleAdmin && ag.App != cl.ClientID {
		return nil, ajwt.NotFound("no such agent")
	}
	return ag, err
}

// handleGetAgent is GET /v1/agents/{id}.
func (s *Server) handleGetAgent(c echo.Context) error {
	cl, err := s.requireRole(c, RoleAdmin, RoleApp)
	if err != nil {
		return err
	}
	withDef, err := includeDefinition(c, cl)
	if err != nil {
		return err
	}
	ag, err := s.loadAgentFor(c, cl)
	if err != nil {
		return err
	}
	v := viewAgent(ag)
	if withDef {
		if err := s.store.View(c.Request().Context(), func(tx Tx) error {
			v, err = viewAgentDefs(tx, ag)
			return err
		}); err != nil {
			return err
		}
	}
	return writeJSON(c, http.StatusOK, v)
}

// handlePatchAgent is PATCH /v1/agents/{id} (admin): `app` and `max_scopes`, effective
// at the next mint.
func (s *Server) handlePatchAgent(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	var req struct {
		App       *string   `json:"app"`
		MaxScopes *[]string `json:"max_scopes"`
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if req.MaxScopes != nil && !validScopes(*req.MaxScopes) {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "max_scopes may hold only %s", strings.Join(knownScopes, ", "))
	}
	if req.App != nil {
		if app, ok := s.clients[*req.App]; !ok || app.Role != RoleApp {
			return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "app must name an app client")
		}
	}
	id := c.Param("id")
	info(c).agentID = trunc(id)
	var view agentView
	err := s.update(c, func(w *wtx) error {
		ag, err := getJSON[Agent](w, tblAgents, id)
		if isNotFound(err) {
			return ajwt.NotFound("no such agent")
		}
		if err != nil {
			return err
		}
		if req.App != nil {
			ag.App = *req.App
		}
		if req.MaxScopes != nil {
			ag.MaxScopes = *req.MaxScopes
		}
		view = viewAgent(ag)
		if err := putJSON(w, tblAgents, id, ag); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, view)
}

// handleRevokeAgent is POST /v1/agents/{id}/revoke (admin): the agent, its instances
// and (through the feed's agent entry) every token naming it in sub or chain stop.
func (s *Server) handleRevokeAgent(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	id := c.Param("id")
	info(c).agentID = trunc(id)
	err := s.update(c, func(w *wtx) error {
		ag, err := getJSON[Agent](w, tblAgents, id)
		if isNotFound(err) {
			return ajwt.NotFound("no such agent")
		}
		if err != nil {
			return err
		}
		if ag.Status == statusRevoked {
			return nil
		}
		ag.Status = statusRevoked
		for _, v := range ag.Versions {
			if v.Status == statusActive {
				if err := w.Delete(tblAgentDup, v.DupKey); err != nil {
					return err
				}
			}
			v.Status = statusRevoked
		}
		if err := putJSON(w, tblAgents, id, ag); err != nil {
			return err
		}
		if err := s.revokeInstances(w, id); err != nil {
			return err
		}
		if err := s.revoke(w, RevokeAgent, id, time.Time{}); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"agent_id": id, "status": statusRevoked})
}

// handleEnroll is POST /v1/agents/{id}/instances (the agent's app) with a DPoP proof
// signed by the new instance key.
func (s *Server) handleEnroll(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApp)
	if err != nil {
		return err
	}
	var req struct {
		AgentChecksum string `json:"agent_checksum"`
		ShimChecksum  string `json:"shim_checksum"`
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	ag, err := s.loadAgentFor(c, cl)
	if err != nil {
		return err
	}
	if ag.App != cl.ClientID {
		return ajwt.Forbidden(ajwt.ReasonForbidden, "client is not this agent's app")
	}
	if ag.Status == statusRevoked {
		return ajwt.Conflict(ajwt.ReasonAgentRevoked, "agent is revoked")
	}
	ctx := c.Request().Context()
	proof, err := s.dpop.Verify(ctx, ajwt.DPoPCheck{
		Values: c.Request().Header.Values("DPoP"), Method: http.MethodPost, HTU: s.cfg.Issuer + c.Request().URL.EscapedPath(),
		KeyCheck: func(jkt string, _ crypto.PublicKey) error {
			return s.store.View(ctx, func(tx Tx) error {
				if _, err := tx.Get(tblInstanceKey, jkt); err == nil {
					return ajwt.Conflict(ajwt.ReasonInstanceExists, "this key is already enrolled")
				} else if !isNotFound(err) {
					return err
				}
				return nil
			})
		},
	})
	if err != nil {
		return idpDPoPError(err)
	}
	active := ag.Active()
	if active == nil || req.AgentChecksum != active.Checksum {
		return ajwt.BadRequest(ajwt.ReasonChecksumMismatch, "agent checksum is not the registered, active definition")
	}
	if s.cfg.Attestor != nil {
		if err := s.cfg.Attestor.Attest(ctx, req.ShimChecksum, c.Request()); err != nil {
			return ajwt.BadRequest(ajwt.ReasonShimUnrecognized, "shim attestation failed")
		}
	}
	jwkRaw, err := json.Marshal(proof.JWK)
	if err != nil {
		return err
	}
	inst := &Instance{InstanceID: "inst-" + ajwt.NewJTI(), AgentID: ag.AgentID, Version: active.Version,
		RegistrationID: active.RegistrationID, Checksum: active.Checksum, ShimChecksum: req.ShimChecksum,
		App: cl.ClientID, JKT: proof.JKT, JWK: jwkRaw, Status: statusActive, EnrolledAt: s.now().UTC()}
	info(c).instanceID = inst.InstanceID
	err = s.update(c, func(w *wtx) error {
		if _, err := w.Get(tblShims, req.ShimChecksum); isNotFound(err) {
			return ajwt.BadRequest(ajwt.ReasonShimUnrecognized, "shim build is not on the allow-list")
		} else if err != nil {
			return err
		}
		if _, err := w.Get(tblInstanceKey, proof.JKT); err == nil {
			return ajwt.Conflict(ajwt.ReasonInstanceExists, "this key is already enrolled")
		} else if !isNotFound(err) {
			return err
		}
		cur, err := getJSON[Agent](w, tblAgents, ag.AgentID)
		if err != nil {
			return err
		}
		if cur.Status == statusRevoked {
			return ajwt.Conflict(ajwt.ReasonAgentRevoked, "agent is revoked")
		}
		if a := cur.Active(); a == nil || a.Version != inst.Version {
			return ajwt.BadRequest(ajwt.ReasonChecksumMismatch, "agent was re-registered meanwhile")
		}
		if err := putJSON(w, tblInstances, instKey(inst.AgentID, inst.InstanceID), inst); err != nil {
			return err
		}
		if err := w.Put(tblInstanceKey, inst.JKT, []byte(instKey(inst.AgentID, inst.InstanceID))); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, map[string]string{"instance_id": inst.InstanceID, "jkt": inst.JKT})
}

// handleRevokeInstance is POST /v1/agents/{id}/instances/{iid}/revoke (the app or admin).
func (s *Server) handleRevokeInstance(c echo.Context) error {
	cl, err := s.requireRole(c, RoleApp, RoleAdmin)
	if err != nil {
		return err
	}
	iid := c.Param("iid")
	key := instKey(c.Param("id"), iid)
	info(c).agentID, info(c).instanceID = trunc(c.Param("id")), trunc(iid)
	err = s.update(c, func(w *wtx) error {
		inst, err := getJSON[Instance](w, tblInstances, key)
		if isNotFound(err) || err == nil && cl.Role != RoleAdmin && inst.App != cl.ClientID {
			return ajwt.NotFound("no such instance")
		}
		if err != nil {
			return err
		}
		if inst.Status == statusRevoked {
			return nil
		}
		inst.Status = statusRevoked
		if err := putJSON(w, tblInstances, key, inst); err != nil {
			return err
		}
		if err := s.revoke(w, RevokeInstance, iid, time.Time{}); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"instance_id": iid, "status": statusRevoked})
}

// handleAllowShim is POST /v1/shims (admin): allow a shim build.
func (s *Server) handleAllowShim(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	var req struct {
		Checksum string `json:"checksum"`
		Note     string `json:"note"`
	}
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if !validDigest(req.Checksum) || len(req.Note) > 1024 {
		return ajwt.BadRequest(ajwt.ReasonInvalidRequest, "checksum must be sha256:<64 lowercase hex>; note at most 1024 bytes")
	}
	sh := Shim{Checksum: req.Checksum, Note: req.Note, AllowedAt: s.now().UTC()}
	err := s.update(c, func(w *wtx) error {
		if err := putJSON(w, tblShims, sh.Checksum, &sh); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, map[string]string{"checksum": sh.Checksum, "note": sh.Note, "allowed_at": rfc3339(sh.AllowedAt)})
}

// handleListShims is GET /v1/shims (admin).
func (s *Server) handleListShims(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin); err != nil {
		return err
	}
	var shims []*Shim
	if err := s.store.View(c.Request().Context(), func(tx Tx) error {
		var err error
		shims, err = listJSON[Shim](tx, tblShims, "")
		return err
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"shims": shims})
}

func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

// instKey is the storage key of an instance: "<agent_id>/<instance_id>", so an
// agent's instances list by prefix.
func instKey(agentID, instanceID string) string { return agentID + "/" + instanceID }
