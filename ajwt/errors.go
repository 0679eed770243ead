package ajwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Reason is a machine-readable refusal code of DESIGN §5.7, carried in the `reason`
// member of error bodies and in audit events.
type Reason string

// IDP and proxy reason codes (DESIGN §5.7).
const (
	ReasonUnknownClient           Reason = "unknown_client"
	ReasonUnknownAgent            Reason = "unknown_agent"
	ReasonAgentRevoked            Reason = "agent_revoked"
	ReasonChecksumMismatch        Reason = "checksum_mismatch"
	ReasonDuplicateChecksum       Reason = "duplicate_checksum"
	ReasonShimUnrecognized        Reason = "shim_unrecognized"
	ReasonInstanceUnknown         Reason = "instance_unknown"
	ReasonInstanceKeyMismatch     Reason = "instance_key_mismatch"
	ReasonInstanceExists          Reason = "instance_exists"
	ReasonDPoPMissing             Reason = "dpop_missing"
	ReasonDPoPInvalid             Reason = "dpop_invalid"
	ReasonDPoPReplay              Reason = "dpop_replay"
	ReasonReplayCacheFull         Reason = "replay_cache_full"
	ReasonExecutionUnknown        Reason = "execution_unknown"
	ReasonExecutionClosed         Reason = "execution_closed"
	ReasonStepUnknown             Reason = "step_unknown"
	ReasonStepComplete            Reason = "step_complete"
	ReasonStepNotOwned            Reason = "step_not_owned"
	ReasonStepNotActive           Reason = "step_not_active"
	ReasonWrongAgentForStep       Reason = "wrong_agent_for_step"
	ReasonResourceMismatch        Reason = "resource_mismatch"
	ReasonDependencyIncomplete    Reason = "dependency_incomplete"
	ReasonApprovalRequired        Reason = "approval_required"
	ReasonScopeExceedsStep        Reason = "scope_exceeds_step"
	ReasonDelegationMissing       Reason = "delegation_missing"
	ReasonDelegationInvalid       Reason = "delegation_invalid"
	ReasonDelegationDepthExceeded Reason = "delegation_depth_exceeded"
	ReasonStepNotDelegated        Reason = "step_not_delegated"
	ReasonWorkflowInvalid         Reason = "workflow_invalid"
	ReasonParamsInvalid           Reason = "params_invalid"
	ReasonInvalidRequest          Reason = "invalid_request"
	ReasonBodyTooLarge            Reason = "body_too_large"
	ReasonForbidden               Reason = "forbidden"
	ReasonNotFound                Reason = "not_found"

	ReasonPathInvalid           Reason = "path_invalid"
	ReasonTokenMissing          Reason = "token_missing"
	ReasonTokenInvalid          Reason = "token_invalid"
	ReasonTokenExpired          Reason = "token_expired"
	ReasonAudienceMismatch      Reason = "audience_mismatch"
	ReasonDPoPHTMMismatch       Reason = "dpop_htm_mismatch"
	ReasonDPoPHTUMismatch       Reason = "dpop_htu_mismatch"
	ReasonDPoPStale             Reason = "dpop_stale"
	ReasonDPoPATHMismatch       Reason = "dpop_ath_mismatch"
	ReasonDPoPKeyMismatch       Reason = "dpop_key_mismatch"
	ReasonDPoPNonce             Reason = "dpop_nonce"
	ReasonRevoked               Reason = "revoked"
	ReasonRevocationStale       Reason = "revocation_stale"
	ReasonOperationNotPermitted Reason = "operation_not_permitted"
	ReasonUpstreamError         Reason = "upstream_error"
)

// OAuth error codes used in the `error` member (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009,
// RFC 8707, RFC 9449 §7.1).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidTarget        = "invalid_target"
	CodeInvalidDPoPProof     = "invalid_dpop_proof"
	CodeUseDPoPNonce         = "use_dpop_nonce"
	CodeInvalidToken         = "invalid_token"
	CodeInsufficientScope    = "insufficient_scope"
	CodeAccessDenied         = "access_denied"
	CodeNotFound             = "not_found"
	CodeTemporarilyUnavail   = "temporarily_unavailable"
	CodeServerError          = "server_error"
)

// Error is a typed protocol error: the HTTP status to answer with, the OAuth `error`
// code, our `reason` and a human description that never contains a secret.
type Error struct {
	Status      int
	Code        string
	Reason      Reason
	Description string
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("%s (%s)", e.Code, e.Reason)
	}
	return fmt.Sprintf("%s (%s): %s", e.Code, e.Reason, e.Description)
}

// Is reports whether target is an *Error with the same reason, so errors.Is works
// against the sentinel-like values built by NewError.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && (t.Code == "" || t.Code == e.Code)
}

// Body is the JSON error body `{"error","reason","error_description"}`.
type Body struct {
	Error       string `json:"error"`
	Reason      Reason `json:"reason"`
	Description string `json:"error_description,omitempty"`
}

// Body returns the JSON-serialisable body of the error.
func (e *Error) Body() Body {
	return Body{Error: e.Code, Reason: e.Reason, Description: e.Description}
}

// MarshalJSON renders the error as its RFC 6749-style body.
func (e *Error) MarshalJSON() ([]byte, error) { return json.Marshal(e.Body()) }

// NewError builds an Error.
func NewError(status int, code string, reason Reason, format string, args ...any) *Error {
	desc := format
	if len(args) > 0 {
		desc = fmt.Sprintf(format, args...)
	}
	return &Error{Status: status, Code: code, Reason: reason, Description: desc}
}

// WithStatus returns a copy of e with another HTTP status and OAuth code; used where the
// same check answers differently at the IDP (400) and at a resource (401).
func (e *Error) WithStatus(status int, code string) *Error {
	c := *e
	c.Status, c.Code = status, code
	return &c
}

// AsError extracts the *Error from err, or wraps an unknown error as a 500 server_error
// whose description does not reveal the internal message.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeServerError, Reason: "internal", Description: "internal error"}
}

// ReasonOf returns the reason code carried by err, or "" when err carries none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Convenience constructors for the common shapes.

// BadRequest is a 400 invalid_request with the given reason.
func BadRequest(reason Reason, format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, CodeInvalidRequest, reason, format, args...)
}

// Forbidden is a 403 access_denied with the given reason.
func Forbidden(reason Reason, format string, args ...any) *Error {
	return NewError(http.StatusForbidden, CodeAccessDenied, reason, format, args...)
}

// NotFound is a 404 not_found.
func NotFound(format string, args ...any) *Error {
	return NewError(http.StatusNotFound, CodeNotFound, ReasonNotFound, format, args...)
}

// Conflict is a 409 invalid_request with the given reason.
func Conflict(reason Reason, format string, args ...any) *Error {
	return NewError(http.StatusConflict, CodeInvalidRequest, reason, format, args...)
}
