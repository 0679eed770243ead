package ajwt

import (
	"encoding/json"
	"fmt"
)

// Audit decisions and sources.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	SourceIDP     = "idp"
	SourceProxy   = "proxy"
)

// AuditEvent is one entry of a service's audit hash chain (DESIGN §5.7). Every member
// is always present ("" or 0 where it does not apply). ClientID (the authenticated
// OAuth client, e.g. the approver of an approval) is our addition to §5.7's list.
type AuditEvent struct {
	Seq         int64  `json:"seq"`
	Time        string `json:"time"`
	Source      string `json:"source"`
	Decision    string `json:"decision"`
	Reason      Reason `json:"reason"`
	ClientID    string `json:"client_id"`
	AgentID     string `json:"agent_id"`
	InstanceID  string `json:"instance_id"`
	ExecutionID string `json:"execution_id"`
	StepID      string `json:"step_id"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	JTI         string `json:"jti"`
	ChainHash   string `json:"chain_hash"`
	LatencyUS   int64  `json:"latency_us"`
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"hash,omitempty"`
}

// ComputeHash returns the chain hash of e: "sha256:" + hex(SHA-256(prev_hash + "\n" +
// JCS(event without its hash member))). Hash is `omitempty` so that the event with an
// empty hash marshals as exactly the object without the member; a stored event always
// has a hash, so it is always present there.
func (e *AuditEvent) ComputeHash() (string, error) {
	c := *e
	c.Hash = ""
	raw, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	canon, err := jcsTransform(raw)
	if err != nil {
		return "", err
	}
	return SHA256Digest(append([]byte(e.PrevHash+"\n"), canon...)), nil
}

// VerifyChain checks that events form an unbroken chain starting after (prevSeq,
// prevHash): contiguous seq, each prev_hash equal to the previous hash, and each hash
// recomputed. It returns the index of the first bad event, or -1.
func VerifyChain(events []AuditEvent, prevSeq int64, prevHash string) (int, error) {
	for i := range events {
		e := &events[i]
		if e.Seq != prevSeq+1 {
			return i, fmt.Errorf("event %d: seq %d does not follow %d", i, e.Seq, prevSeq)
		}
		if e.PrevHash != prevHash {
			return i, fmt.Errorf("event seq %d: prev_hash does not match the previous hash", e.Seq)
		}
		h, err := e.ComputeHash()
		if err != nil {
			return i, err
		}
		if h != e.Hash {
			return i, fmt.Errorf("event seq %d: hash does not match its content", e.Seq)
		}
		prevSeq, prevHash = e.Seq, e.Hash
	}
	return -1, nil
}
