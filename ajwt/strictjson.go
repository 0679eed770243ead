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
func CheckStrictJSON(b []byte) error { return checkStrict(b, false) }

// CheckStrictJWTJSON is CheckStrictJSON for JWT headers and payloads, which also refuses
// member names that are not lower-case ASCII at any depth. Go's decoder matches names
// case-insensitively (and folds U+212A to "k"), so `{"ALG":…}` or a Kelvin-sign "kid"
// would be read as a member that a case-sensitive JOSE parser (RFC 7515 §4) does not
// see; every name this protocol defines is lower-case ASCII.
func CheckStrictJWTJSON(b []byte) error { return checkStrict(b, true) }

func checkStrict(b []byte, lowerNames bool) error {
	if !utf8.Valid(b) {
		return errors.New("json: invalid UTF-8")
	}
	if err := checkSurrogates(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := walkValue(dec, 0, lowerNames); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("json: trailing data after value")
	}
	return nil
}

func walkValue(dec *json.Decoder, depth int, lowerNames bool) error {
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
			if lowerNames && !lowerASCII(k) {
				return fmt.Errorf("json: member name %q is not lower-case ASCII", k)
			}
			if _, dup := seen[k]; dup {
				return fmt.Errorf("json: duplicate member %q", k)
			}
			seen[k] = struct{}{}
			if err := walkValue(dec, depth+1, lowerNames); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1, lowerNames); err != nil {
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

// decodeJWTPart decodes a JWT payload checked by CheckStrictJWTJSON into v, ignoring
// members v does not declare (RFC 7519 §4 allows unknown claims).
func decodeJWTPart(b []byte, v any) error {
	if err := CheckStrictJWTJSON(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

func lowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

// checkSurrogates refuses `\u` escapes of unpaired UTF-16 surrogates, which Go's
// decoder silently turns into U+FFFD (so two different texts would decode equal).
// Other malformations are left to the decoder to report.
func checkSurrogates(b []byte) error {
	if !bytes.Contains(b, []byte(`\u`)) {
		return nil
	}
	hex4 := func(i int) (rune, bool) {
		if i+4 > len(b) {
			return 0, false
		}
		var r rune
		for _, c := range b[i : i+4] {
			v, ok := unhex(c)
			if !ok {
				return 0, false
			}
			r = r<<4 | rune(v)
		}
		return r, true
	}
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(b):
			if b[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(i + 2)
			if !ok {
				return nil
			}
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.New("json: unpaired surrogate escape")
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex4(i + 8)
				if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
					return errors.New("json: unpaired surrogate escape")
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return nil
}
