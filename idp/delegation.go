package idp

import (
	"slices"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// maxChainBytes bounds the delegation_chain parameter before anything is parsed.
const maxChainBytes = 9 * ajwt.MaxJWTBytes

type verifiedChain struct {
	subjects []string // "user:<user>", then every link's sub, root first
	jtis     []string
}

func delegationErr(format string, args ...any) *ajwt.Error {
	return grantErr(ajwt.ReasonDelegationInvalid, format, args...)
}

// verifyChain checks delegation_chain = [J0 … Jn] exactly as DESIGN §5.5 lists it, for
// a mint of stepID by agentID whose DPoP key is proofJKT.
func (s *Server) verifyChain(tx Tx, ex *Execution, wf *Workflow, agentID, stepID, proofJKT, raw string) (*verifiedChain, error) {
	if len(raw) > maxChainBytes {
		return nil, delegationErr("delegation_chain is too long")
	}
	parts := strings.Split(raw, ",")
	// Depth is checked before any link is parsed; the root is depth 0.
	if len(parts)-1 > wf.MaxDelegationDepth {
		return nil, grantErr(ajwt.ReasonDelegationDepthExceeded, "delegation chain has %d links after the root; the workflow allows %d", len(parts)-1, wf.MaxDelegationDepth)
	}
	now := s.now().Unix()
	leeway := int64(s.cfg.Leeway.Seconds())
	out := &verifiedChain{subjects: []string{ajwt.UserSubject(ex.User)}}
	var prev *ajwt.DelegationClaims
	for i, p := range parts {
		j, err := ajwt.ParseJWS(p)
		if err != nil {
			return nil, delegationErr("link %d: %v", i, err)
		}
		if !j.TypIs(ajwt.TypDelegation) {
			return nil, delegationErr("link %d: typ is not %s", i, ajwt.TypDelegation)
		}
		if j.HasKeyHeaders() {
			return nil, delegationErr("link %d carries a key header; links are verified only with stored keys", i)
		}
		var dc ajwt.DelegationClaims
		if err := j.Claims(&dc); err != nil {
			return nil, delegationErr("link %d: %v", i, err)
		}
		if i == 0 {
			// J0: signed by the IDP, the root recorded for this execution, sub = entry agent.
			// The root we issued is byte-identical to the one recorded (by digest), which
			// proves our signature without verifying it again; anything else is verified.
			if ex.RootDigest == "" || ajwt.SHA256Digest([]byte(p)) != ex.RootDigest {
				if j.Header.Alg != ajwt.AlgEdDSA {
					return nil, delegationErr("root: alg must be EdDSA")
				}
				k, ok := s.keys.get().byKID[j.Header.Kid]
				if !ok {
					return nil, delegationErr("root: not signed by this IDP")
				}
				if err := j.Verify(k.pub); err != nil {
					return nil, delegationErr("root: %v", err)
				}
			}
			if dc.Issuer != s.cfg.Issuer || dc.JTI != ex.RootJTI || dc.Subject != ajwt.AgentSubject(wf.EntryAgent) {
				return nil, delegationErr("root is not this execution's root delegation")
			}
		} else {
			// Ji: chained to J(i-1) and signed by an enrolled, live instance of the delegator.
			if j.Header.Alg != ajwt.AlgEdDSA && j.Header.Alg != ajwt.AlgES256 {
				return nil, delegationErr("link %d: alg must be EdDSA or ES256", i)
			}
			if dc.Prev != prev.JTI || dc.Issuer != prev.Subject {
				return nil, delegationErr("link %d is not chained to its parent", i)
			}
			delegator, ok := strings.CutPrefix(dc.Issuer, "agent:")
			if !ok {
				return nil, delegationErr("link %d: issuer is not an agent", i)
			}
			inst, err := lookupInstanceByKey(tx, j.Header.Kid)
			if err != nil {
				return nil, err
			}
			if inst == nil || inst.Status != statusActive || inst.AgentID != delegator || inst.App != ex.ClientID {
				return nil, delegationErr("link %d: kid is not a live instance of %s enrolled by this app", i, trunc(delegator))
			}
			dag, err := getJSON[Agent](tx, tblAgents, delegator)
			if err != nil || dag.Status != statusActive {
				return nil, delegationErr("link %d: delegator is not an active agent", i)
			}
			if revoked, err := isRevoked(tx, RevokeInstance, inst.InstanceID); err != nil || revoked {
				return nil, delegationErr("link %d: delegator instance revoked", i)
			}
			_, pub, err := ajwt.ParseJWK(inst.JWK)
			if err != nil {
				return nil, err
			}
			if err := j.Verify(pub); err != nil {
				return nil, delegationErr("link %d: %v", i, err)
			}
			for _, st := range dc.Steps {
				if !slices.Contains(prev.Steps, st) {
					return nil, delegationErr("link %d widens the delegated steps", i)
				}
			}
			if dc.Expiry > prev.Expiry {
				return nil, delegationErr("link %d outlives its parent", i)
			}
			if prev.Cnf != nil && prev.Cnf.JKT != j.Header.Kid {
				return nil, delegationErr("link %d is not signed by the key its parent confirms", i)
			}
		}
		// Every link: unique jti, iat not in the future, not expired, this execution.
		if dc.JTI == "" || slices.Contains(out.jtis, dc.JTI) {
			return nil, delegationErr("link %d: missing or repeated jti", i)
		}
		if dc.IssuedAt > now+leeway || dc.Expiry <= now {
			return nil, delegationErr("link %d is not valid now", i)
		}
		if dc.ExecutionID != ex.ExecutionID {
			return nil, delegationErr("link %d belongs to another execution", i)
		}
		out.jtis = append(out.jtis, dc.JTI)
		out.subjects = append(out.subjects, dc.Subject)
		prev = &dc
	}
	if prev.Cnf != nil && prev.Cnf.JKT != proofJKT {
		return nil, delegationErr("the leaf delegation is bound to another key")
	}
	if prev.Subject != ajwt.AgentSubject(agentID) || !slices.Contains(prev.Steps, stepID) {
		return nil, grantErr(ajwt.ReasonStepNotDelegated, "the leaf delegation does not delegate this step to this agent")
	}
	return out, nil
}
