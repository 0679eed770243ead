package mirror

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// shape describes the members a request may carry: an object with exactly these member
// names (compared case-sensitively; encoding/json alone would accept "Package" for
// "package"), an array of elem, or (both nil) a scalar whose type json.Unmarshal checks.
type shape struct {
	fields map[string]*shape
	elem   *shape
}

var (
	scalar       = &shape{}
	queryPackage = &shape{fields: map[string]*shape{"name": scalar, "ecosystem": scalar, "purl": scalar}}
	queryShape   = &shape{fields: map[string]*shape{"package": queryPackage, "version": scalar, "commit": scalar, "page_token": scalar}}
	batchShape   = &shape{fields: map[string]*shape{"queries": {elem: queryShape}}}
)

// checkShape walks one JSON value of data and refuses unknown or duplicate member names,
// and anything after the value.
func checkShape(data []byte, s *shape) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, s, "body"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func walk(dec *json.Decoder, s *shape, at string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, isDelim := tok.(json.Delim)
	switch {
	case !isDelim:
		if s.fields != nil || s.elem != nil {
			if tok == nil {
				return nil // null object or array: decoded as absent
			}
			return fmt.Errorf("%s: want an object or array", at)
		}
		return nil
	case d == '{' && s.fields != nil:
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			sub, ok := s.fields[k]
			if !ok {
				return fmt.Errorf("%s: unknown member %q", at, k)
			}
			if seen[k] {
				return fmt.Errorf("%s: member %q given more than once", at, k)
			}
			seen[k] = true
			if err := walk(dec, sub, at+"."+k); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case d == '[' && s.elem != nil:
		for i := 0; dec.More(); i++ {
			if err := walk(dec, s.elem, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	default:
		return fmt.Errorf("%s: unexpected %v", at, d)
	}
}
