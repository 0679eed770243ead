package forge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxBodyBytes bounds every request body (1 MiB).
const maxBodyBytes = 1 << 20

// decodeStrict reads one JSON object from r and assigns its members to the
// pointers in fields. Member names are matched exactly (encoding/json matches
// them case-insensitively, which would let "Branch" stand in for "branch");
// unknown members, duplicate members, null values for non-pointer targets,
// trailing data and non-object bodies are refused with 422.
func decodeStrict(r io.Reader, fields map[string]any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return bodyError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errUnprocessable("Invalid request.\n\nBody must be a JSON object.")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bodyError(err)
		}
		name, ok := tok.(string)
		if !ok {
			return errUnprocessable("Problems parsing JSON")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bodyError(err)
		}
		if seen[name] {
			return errUnprocessable(fmt.Sprintf("Invalid request.\n\n%q is given more than once.", name))
		}
		seen[name] = true
		target, ok := fields[name]
		if !ok {
			return errUnprocessable(fmt.Sprintf("Invalid request.\n\n%q is not a permitted key.", name))
		}
		if err := unmarshalMember(raw, target); err != nil {
			return errUnprocessable(fmt.Sprintf("Invalid request.\n\nFor %q: %v.", name, err))
		}
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return errUnprocessable("Problems parsing JSON")
	}
	return nil
}

// unmarshalMember decodes one member value; nested objects are decoded with
// the same exact-name rule when the target implements strictObject.
func unmarshalMember(raw json.RawMessage, target any) error {
	if so, ok := target.(strictObject); ok {
		if string(raw) == "null" {
			return nil
		}
		return decodeStrict(bytes.NewReader(raw), so.fields())
	}
	if string(raw) == "null" {
		return errors.New("null is not allowed")
	}
	return json.Unmarshal(raw, target)
}

// strictObject is a nested request object decoded with exact member names.
type strictObject interface {
	fields() map[string]any
}

// bodyError maps a read/parse failure of the request body to an APIError.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge()
	}
	if errors.Is(err, io.EOF) {
		return errUnprocessable("Problems parsing JSON")
	}
	return errUnprocessable("Problems parsing JSON")
}
