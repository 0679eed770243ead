package ajwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of any JSON value we decode from an attacker.
const MaxJSONDepth = 32

// CheckStrictJSON reports an error unless b is exactly one JSON value that is valid
// UTF-8, has no duplicate member names at any depth, nests at most MaxJSONDepth levels
// and has nothing but whitespace after it. Go's decoder alone keeps the last of two
// duplicate members, which lets a checker and a forwarder disagree on the same bytes.
func CheckStrictJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("json: invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := walkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("json: trailing data after value")
	}
	return nil
}

func walkValue(dec *json.Decoder, depth int) error {
	if depth > MaxJSONDepth {
		return errors.New("json: nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]struct{}{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("json: %w", err)
			}
			k, ok := kt.(string)
			if !ok {
				return errors.New("json: object key is not a string")
			}
			if _, dup := seen[k]; dup {
				return fmt.Errorf("json: duplicate member %q", k)
			}
			seen[k] = struct{}{}
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // closing delimiter
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// DecodeStrict checks b with CheckStrictJSON and decodes it into v, refusing members
// that v does not declare.
func DecodeStrict(b []byte, v any) error {
	if err := CheckStrictJSON(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// DecodeStrictLenient is DecodeStrict that ignores members v does not declare (used
// for JWT payloads, where unknown claims are allowed by RFC 7519 §4).
func DecodeStrictLenient(b []byte, v any) error {
	if err := CheckStrictJSON(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
