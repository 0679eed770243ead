package idp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

func revokedKey(kind, id string) string { return kind + ":" + id }

// revoke records a revocation (once per kind and id) in the feed and in the lookup
// table. until is when no token it covers can still be valid (zero for agents and
// instances).
func (s *Server) revoke(tx Tx, kind, id string, until time.Time) error {
	key := revokedKey(kind, id)
	if _, err := tx.Get(tblRevoked, key); err == nil {
		return nil
	} else if !isNotFound(err) {
		return err
	}
	r := Revocation{Kind: kind, ID: id, At: s.now().UTC(), Until: until.UTC()}
	if until.IsZero() {
		r.Until = time.Time{}
	}
	seq, err := tx.Append(logRevocations, mustJSON(r))
	if err != nil {
		return err
	}
	r.Seq = seq
	return putJSON(tx, tblRevoked, key, r)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only our own record types reach here
		return []byte("null")
	}
	return b
}

func isRevoked(tx Tx, kind, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	_, err := tx.Get(tblRevoked, revokedKey(kind, id))
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

// tokenRevoked reports whether a token id was revoked (fails closed on storage errors).
func (s *Server) tokenRevoked(ctx context.Context, jti string) bool {
	revoked := true
	_ = s.store.View(ctx, func(tx Tx) error {
		var err error
		revoked, err = isRevoked(tx, RevokeToken, jti)
		if err != nil {
			revoked = true
		}
		return nil
	})
	return revoked
}

// untilTokens is the latest expiry of a token minted now.
func (s *Server) untilTokens() time.Time { return s.now().Add(s.cfg.TokenTTL + s.cfg.Leeway) }

// handleRevocations is GET /v1/revocations?since=N.
func (s *Server) handleRevocations(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleResource); err != nil {
		return err
	}
	since, err := parseSince(c)
	if err != nil {
		return err
	}
	now := s.now()
	out := []Revocation{}
	var latest int64
	err = s.store.View(c.Request().Context(), func(tx Tx) error {
		last, err := tx.Last(logRevocations)
		if err != nil {
			return err
		}
		latest = last.Seq
		entries, err := tx.ReadLog(logRevocations, since, 10_000)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var r Revocation
			if err := json.Unmarshal(e.Value, &r); err != nil {
				return err
			}
			r.Seq = e.Seq
			if since == 0 && !r.Until.IsZero() && r.Until.Before(now) {
				continue
			}
			out = append(out, r)
		}
		if len(entries) == 10_000 {
			latest = entries[len(entries)-1].Seq
		}
		return nil
	})
	if err != nil {
		return err
	}
	type rev struct {
		Seq   int64  `json:"seq"`
		Kind  string `json:"kind"`
		ID    string `json:"id"`
		At    string `json:"at"`
		Until string `json:"until,omitempty"`
	}
	list := make([]rev, len(out))
	for i, r := range out {
		list[i] = rev{Seq: r.Seq, Kind: r.Kind, ID: r.ID, At: rfc3339(r.At), Until: rfc3339(r.Until)}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"seq": latest, "revocations": list})
}

// handleRevoke is POST /oauth2/revoke (RFC 7009). Only the client that obtained the
// token, or admin, may revoke it; another client gets 403 (a deliberate deviation from
// RFC 7009's silent 200, so a misconfigured client learns it). An unknown or invalid
// token answers 200 as RFC 7009 §2.2 says.
func (s *Server) handleRevoke(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	f, err := readForm(c)
	if err != nil {
		return err
	}
	cl, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := f.require("token"); err != nil {
		return err
	}
	tc, ok := s.parseOwnToken(f["token"])
	if !ok {
		return c.NoContent(http.StatusOK)
	}
	if cl.Role != RoleAdmin && cl.ClientID != tc.ClientID {
		return ajwt.Forbidden(ajwt.ReasonForbidden, "only the client that obtained the token may revoke it")
	}
	a := info(c)
	a.jti = tc.JTI
	if id, ok := strings.CutPrefix(tc.Subject, "agent:"); ok {
		a.agentID = id
	}
	if tc.Intent != nil {
		a.executionID, a.stepID = tc.Intent.ExecutionID, tc.Intent.StepID
	}
	if tc.AgentProof != nil {
		a.instanceID = tc.AgentProof.InstanceID
	}
	err = s.update(c, func(w *wtx) error {
		if err := s.revoke(w, RevokeToken, tc.JTI, time.Unix(tc.Expiry, 0)); err != nil {
			return err
		}
		return w.allow("")
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// parseOwnToken verifies a token we issued (intent or access token: our signature, our
// issuer) and returns its claims; ok is false for anything else. Every fact revocation
// needs (client, agent, instance, execution, step, expiry) is in the signed claims, so
// the IDP keeps no per-token record.
func (s *Server) parseOwnToken(tok string) (*ajwt.IntentClaims, bool) {
	for _, typ := range []string{ajwt.TypIntent, ajwt.TypAccess} {
		j, err := s.keys.verify(tok, typ)
		if err != nil {
			continue
		}
		var cl ajwt.IntentClaims
		if err := j.Claims(&cl); err != nil || cl.JTI == "" || cl.Issuer != s.cfg.Issuer {
			return nil, false
		}
		return &cl, true
	}
	return nil, false
}

// handleIntrospect is POST /oauth2/introspect (RFC 7662), for resource and admin
// clients. Anything but an active token answers only {"active": false}.
func (s *Server) handleIntrospect(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	f, err := readForm(c)
	if err != nil {
		return err
	}
	if _, err := s.requireRole(c, RoleAdmin, RoleResource); err != nil {
		return err
	}
	if err := f.require("token"); err != nil {
		return err
	}
	inactive := map[string]any{"active": false}
	tok := f["token"]
	now := s.now().Unix()
	leeway := int64(s.cfg.Leeway.Seconds())
	if j, err := s.keys.verify(tok, ajwt.TypIntent); err == nil {
		var cl ajwt.IntentClaims
		if err := j.Claims(&cl); err != nil || cl.Intent == nil || cl.AgentProof == nil || cl.Cnf == nil {
			return writeJSON(c, http.StatusOK, inactive)
		}
		if cl.Issuer != s.cfg.Issuer || cl.Expiry+leeway < now || cl.NotBefore-leeway > now {
			return writeJSON(c, http.StatusOK, inactive)
		}
		active, err := s.intentTokenLive(c.Request().Context(), &cl)
		if err != nil || !active {
			return writeJSON(c, http.StatusOK, inactive)
		}
		return writeJSON(c, http.StatusOK, map[string]any{
			"active": true, "token_type": "DPoP", "cnf": cl.Cnf, "scope": cl.Scope, "client_id": cl.ClientID,
			"sub": cl.Subject, "aud": cl.Audience, "iss": cl.Issuer, "exp": cl.Expiry, "iat": cl.IssuedAt,
			"nbf": cl.NotBefore, "jti": cl.JTI, "intent": cl.Intent, "agent_proof": cl.AgentProof,
		})
	}
	if j, err := s.keys.verify(tok, ajwt.TypAccess); err == nil {
		var cl ajwt.AccessClaims
		if err := j.Claims(&cl); err != nil || cl.Issuer != s.cfg.Issuer || cl.Expiry+leeway < now || s.tokenRevoked(c.Request().Context(), cl.JTI) {
			return writeJSON(c, http.StatusOK, inactive)
		}
		return writeJSON(c, http.StatusOK, map[string]any{
			"active": true, "token_type": "Bearer", "scope": cl.Scope, "client_id": cl.ClientID,
			"sub": cl.Subject, "aud": cl.Audience, "iss": cl.Issuer, "exp": cl.Expiry, "iat": cl.IssuedAt,
			"nbf": cl.NotBefore, "jti": cl.JTI,
		})
	}
	return writeJSON(c, http.StatusOK, inactive)
}

// intentTokenLive checks every revocation that can cover an intent token: the token,
// its instance, its agent, the agents of its delegation chain, its step and its
// execution, plus the AS-side state (step complete, execution closed).
func (s *Server) intentTokenLive(ctx context.Context, cl *ajwt.IntentClaims) (bool, error) {
	live := false
	err := s.store.View(ctx, func(tx Tx) error {
		in := cl.Intent
		checks := [][2]string{
			{RevokeToken, cl.JTI}, {RevokeInstance, cl.AgentProof.InstanceID},
			{RevokeExecution, in.ExecutionID}, {RevokeStep, in.ExecutionID + "/" + in.StepID},
		}
		for _, m := range append([]string{cl.Subject}, in.DelegationChain...) {
			if id, ok := strings.CutPrefix(m, "agent:"); ok {
				checks = append(checks, [2]string{RevokeAgent, id})
			}
		}
		for _, ch := range checks {
			r, err := isRevoked(tx, ch[0], ch[1])
			if err != nil || r {
				return err
			}
		}
		ex, err := getJSON[Execution](tx, tblExecutions, in.ExecutionID)
		if err != nil {
			return err
		}
		st := ex.Step(in.StepID)
		if ex.Status != statusOpen || st == nil || st.State == stateComplete {
			return nil
		}
		agentID, _ := strings.CutPrefix(cl.Subject, "agent:")
		inst, err := getJSON[Instance](tx, tblInstances, instKey(agentID, cl.AgentProof.InstanceID))
		if err != nil {
			return err
		}
		live = inst.Status == statusActive
		return nil
	})
	if isNotFound(err) {
		return false, nil
	}
	return live, err
}
