package forge

import (
	"errors"
	"fmt"
	"net/http"
)

// documentationURL is what GitHub puts in the documentation_url member of errors.
const documentationURL = "https://docs.github.com/rest"

// APIError is a GitHub-shaped error: an HTTP status and a message. It is
// created by the constructors below and rendered in one place
// (Server.errorHandler).
type APIError struct {
	Status  int
	Message string
}

// Error implements error.
func (e *APIError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func errBadCredentials() *APIError {
	return &APIError{Status: http.StatusUnauthorized, Message: "Bad credentials"}
}

func errNotFound() *APIError { return &APIError{Status: http.StatusNotFound, Message: "Not Found"} }

func errConflict(msg string) *APIError { return &APIError{Status: http.StatusConflict, Message: msg} }

func errUnprocessable(msg string) *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Message: msg}
}

func errNotMergeable(msg string) *APIError {
	return &APIError{Status: http.StatusMethodNotAllowed, Message: msg}
}

func errTooLarge() *APIError {
	return &APIError{Status: http.StatusRequestEntityTooLarge, Message: "Request body too large"}
}

func errInternal() *APIError {
	return &APIError{Status: http.StatusInternalServerError, Message: "Server Error"}
}

// asAPIError returns the APIError inside err, if any.
func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}
