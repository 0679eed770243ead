package ajwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"
)

// Path templates of DESIGN §5.3: "/"-separated segments, each a literal, a `{param}`, `*`
// (exactly one segment) or `**` (one or more segments). A template is filled at mint time
// (FillTemplate, Operation.Fill): every `{param}` is replaced by its value, which may span
// several segments ("acme/webapp"), and `*` / `**` stay. The proxy matches a request's
// escaped path against the filled template (MatchPath) without decoding it, so that
// matching and forwarding see the same string (DESIGN §5.6 step 0).

// Limits of templates and parameter values.
const (
	MaxTemplateBytes   = 512
	MaxParamValueBytes = 256
)

// isParamValueByte reports whether c may appear in a parameter value segment
// ([A-Za-z0-9_.-]).
func isParamValueByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// isLiteralByte reports whether c may appear in a literal template segment
// ([A-Za-z0-9_.~-], RFC 3986 unreserved characters, which no client percent-encodes).
func isLiteralByte(c byte) bool { return isParamValueByte(c) || c == '~' }

// ValidParamValue reports whether v is an acceptable parameter value (DESIGN §5.3): it
// matches ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$, has no "." or ".." segment and is at most
// MaxParamValueBytes bytes long. The branch value "ajwt/<execution_id>" is one.
func ValidParamValue(v string) bool {
	if len(v) == 0 || len(v) > MaxParamValueBytes {
		return false
	}
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '/' {
			if seg := v[start:i]; seg == "" || seg == "." || seg == ".." {
				return false
			}
			start = i + 1
			continue
		}
		if !isParamValueByte(v[i]) {
			return false
		}
	}
	return true
}

// validParamName reports whether n matches [a-z_][a-z0-9_]*.
func validParamName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segStar
	segDoubleStar
)

// walkTemplate validates tmpl and calls fn for each segment in order (for a parameter,
// text is its name).
func walkTemplate(tmpl string, fn func(kind segKind, text string) error) error {
	if len(tmpl) > MaxTemplateBytes {
		return fmt.Errorf("path template longer than %d bytes", MaxTemplateBytes)
	}
	if tmpl == "" || tmpl[0] != '/' {
		return fmt.Errorf("path template %q does not start with /", trunc(tmpl))
	}
	doubleStar := false
	rest := tmpl[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		var kind segKind
		text := seg
		switch {
		case seg == "":
			return fmt.Errorf("path template %q has an empty segment", trunc(tmpl))
		case seg == "." || seg == "..":
			return fmt.Errorf("path template %q has a %q segment", trunc(tmpl), seg)
		case seg == "*":
			kind = segStar
		case seg == "**":
			if doubleStar {
				return fmt.Errorf("path template %q has more than one **", trunc(tmpl))
			}
			doubleStar, kind = true, segDoubleStar
		case seg[0] == '{':
			if len(seg) < 3 || seg[len(seg)-1] != '}' || !validParamName(seg[1:len(seg)-1]) {
				return fmt.Errorf("path template %q: segment %q is not a {name} parameter", trunc(tmpl), trunc(seg))
			}
			kind, text = segParam, seg[1:len(seg)-1]
		default:
			for i := 0; i < len(seg); i++ {
				if !isLiteralByte(seg[i]) {
					return fmt.Errorf("path template %q: segment %q has a character outside [A-Za-z0-9_.~-]", trunc(tmpl), trunc(seg))
				}
			}
		}
		if err := fn(kind, text); err != nil {
			return err
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// TemplateParams validates a path template and returns the names of the parameters it
// uses (including "branch"), each once, in order of first use. It returns an error for a
// malformed template: not starting with "/", an empty, "." or ".." segment, a segment
// with "{" that is not exactly {name} with name [a-z_][a-z0-9_]*, a literal segment with
// a character outside [A-Za-z0-9_.~-] (so "a*", "***" and "%2F" are refused), more than
// one "**", or more than MaxTemplateBytes bytes.
func TemplateParams(tmpl string) ([]string, error) {
	var names []string
	err := walkTemplate(tmpl, func(kind segKind, text string) error {
		if kind != segParam {
			return nil
		}
		for _, n := range names {
			if n == text {
				return nil
			}
		}
		names = append(names, text)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}

// FillTemplate validates tmpl and substitutes every {name} with values[name]; `*` and
// `**` are kept. A value may contain "/" and then fills several segments ("acme/webapp").
// It returns an error for a malformed template, a missing value, or a value that is not
// ValidParamValue.
func FillTemplate(tmpl string, values map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	err := walkTemplate(tmpl, func(kind segKind, text string) error {
		b.WriteByte('/')
		if kind != segParam {
			b.WriteString(text)
			return nil
		}
		v, err := paramValue(values, text)
		if err != nil {
			return err
		}
		b.WriteString(v)
		return nil
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

func paramValue(values map[string]string, name string) (string, error) {
	v, ok := values[name]
	if !ok {
		return "", fmt.Errorf("no value for parameter %q", name)
	}
	if !ValidParamValue(v) {
		return "", fmt.Errorf("value of parameter %q is not a valid parameter value", name)
	}
	return v, nil
}

// fillString substitutes every {name} inside a JSON member template such as "{branch}" or
// "refs/heads/{branch}". A "{" without a matching "}" , a stray "}" or an invalid name is
// an error; all other characters are kept.
func fillString(s string, values map[string]string) (string, error) {
	if strings.IndexAny(s, "{}") < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 64)
	for i := 0; i < len(s); {
		switch s[i] {
		case '{':
			j := strings.IndexByte(s[i+1:], '}')
			if j < 0 {
				return "", fmt.Errorf("json template %q has an unclosed {", trunc(s))
			}
			name := s[i+1 : i+1+j]
			if !validParamName(name) {
				return "", fmt.Errorf("json template %q: %q is not a parameter name", trunc(s), trunc(name))
			}
			v, err := paramValue(values, name)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += j + 2
		case '}':
			return "", fmt.Errorf("json template %q has a stray }", trunc(s))
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

// Fill returns a copy of o with its path template filled (FillTemplate) and every `{name}`
// inside its JSON member values substituted. o itself is not modified.
func (o Operation) Fill(values map[string]string) (Operation, error) {
	p, err := FillTemplate(o.Path, values)
	if err != nil {
		return Operation{}, err
	}
	out := Operation{Method: o.Method, Path: p}
	if len(o.JSON) > 0 {
		out.JSON = make(map[string]string, len(o.JSON))
		for k, v := range o.JSON {
			f, err := fillString(v, values)
			if err != nil {
				return Operation{}, fmt.Errorf("json member %q: %w", trunc(k), err)
			}
			out.JSON[k] = f
		}
	}
	return out, nil
}

// ValidEscapedPath reports whether an escaped request path passes the path hygiene of
// DESIGN §5.6 step 0: it starts with "/", has no empty, "." or ".." segment (so no "//"
// and no trailing "/"), and contains no backslash and no %2F, %5C, %2E or %00 in either
// case.
func ValidEscapedPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	s := p[1:]
	for {
		seg, rest, more := cutSeg(s)
		if !wildSeg(seg) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// cutSeg splits off the first "/"-separated segment of s.
func cutSeg(s string) (seg, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// wildSeg reports whether an escaped path segment may be matched by a wildcard: not
// empty, not "." or "..", and (defence in depth behind §5.6 step 0) without a backslash
// or an escape that decodes to "/", "\", "." or NUL, nor a truncated escape.
func wildSeg(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			return false
		case '%':
			if i+2 >= len(s) {
				return false
			}
			h, l := s[i+1], s[i+2]|0x20 // lower-case the second hex digit
			if h == '2' && (l == 'f' || l == 'e') || h == '5' && l == 'c' || h == '0' && l == '0' {
				return false
			}
		}
	}
	return true
}

// segMatch matches one pattern segment (not "**") against one escaped path segment.
func segMatch(p, s string) bool {
	switch {
	case p == "*":
		return wildSeg(s)
	case p == "**":
		return false // a second ** is never produced by a valid template
	case len(p) > 0 && p[0] == '{':
		return false // an unfilled parameter never matches
	default:
		return p == s
	}
}

// allWild reports whether every segment of s (at least one) may be matched by a
// wildcard.
func allWild(s string) bool {
	for {
		seg, rest, more := cutSeg(s)
		if !wildSeg(seg) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// MatchPath reports whether the escaped request path matches pattern, a filled template.
// Segments are compared one by one without decoding: a literal segment matches exactly the
// same bytes (so "a%2Fb" never matches "a/b" and "%7E" never matches "~"), `*` matches
// exactly one segment and `**` one or more; no wildcard matches an empty, "." or ".."
// segment, nor one containing a backslash or an escaped "/", "\", "." or NUL. A segment
// still written {name} never matches. It does not allocate.
func MatchPath(pattern, escapedPath string) bool {
	if pattern == "" || pattern[0] != '/' || escapedPath == "" || escapedPath[0] != '/' {
		return false
	}
	p, s := pattern[1:], escapedPath[1:]
	for {
		pseg, prest, pmore := cutSeg(p)
		if pseg == "**" {
			return matchDoubleStar(prest, pmore, s)
		}
		sseg, srest, smore := cutSeg(s)
		if !segMatch(pseg, sseg) {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		p, s = prest, srest
	}
}

// matchDoubleStar matches the rest s of a path (at least one segment) against "**"
// followed, when hasSuffix, by the pattern segments in suffix.
func matchDoubleStar(suffix string, hasSuffix bool, s string) bool {
	if !hasSuffix {
		return allWild(s)
	}
	// The suffix has k segments; they match the last k segments of s, and the ≥ 1
	// segments before them are what ** covers.
	k := strings.Count(suffix, "/") + 1
	idx := len(s)
	for n := 0; n < k; n++ {
		j := strings.LastIndexByte(s[:idx], '/')
		if j < 0 {
			return false
		}
		idx = j
	}
	if !allWild(s[:idx]) {
		return false
	}
	tail := s[idx+1:]
	for {
		pseg, prest, pmore := cutSeg(suffix)
		sseg, srest, _ := cutSeg(tail)
		if !segMatch(pseg, sseg) {
			return false
		}
		if !pmore {
			return true
		}
		suffix, tail = prest, srest
	}
}

// DecodeJSONObject checks body with CheckStrictJSON (valid UTF-8, no duplicate member
// names at any depth, bounded depth, no trailing data) and decodes it as a JSON object
// into its top-level members.
func DecodeJSONObject(body []byte) (map[string]json.RawMessage, error) {
	if err := CheckStrictJSON(body); err != nil {
		return nil, err
	}
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return nil, errors.New("json: body is not an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return m, nil
}

// Matches reports whether a request matches o: the method is equal (case-sensitive; the
// workflow's methods are upper-case), the escaped path matches o.Path (MatchPath) and,
// for every member k→v of o.JSON, the decoded body has the member k whose value is a JSON
// string equal to v. A body nil while o.JSON is not empty never matches. A body that
// also has a member whose name equals k only under Unicode case folding (e.g. "Branch"
// next to "branch") never matches either: Go's encoding/json, as a forwarding target may
// use, folds case when decoding into a struct and would take the other value.
func (o Operation) Matches(method, escapedPath string, body map[string]json.RawMessage) bool {
	return o.Method == method && MatchPath(o.Path, escapedPath) && o.bodyMatches(body)
}

func (o Operation) bodyMatches(body map[string]json.RawMessage) bool {
	if len(o.JSON) == 0 {
		return true
	}
	if body == nil {
		return false
	}
	for k, v := range o.JSON {
		raw, ok := body[k]
		if !ok || !jsonStringEquals(raw, v) {
			return false
		}
	}
	for bk := range body {
		for k := range o.JSON {
			if bk != k && strings.EqualFold(bk, k) {
				return false
			}
		}
	}
	return true
}

// jsonStringEquals reports whether raw is a JSON string whose value is v.
func jsonStringEquals(raw json.RawMessage, v string) bool {
	for len(raw) > 0 && isJSONSpace(raw[0]) {
		raw = raw[1:]
	}
	for len(raw) > 0 && isJSONSpace(raw[len(raw)-1]) {
		raw = raw[:len(raw)-1]
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	// Fast path: no escapes in raw and none needed by v.
	if len(raw) == len(v)+2 && string(raw[1:len(raw)-1]) == v && plainJSONString(v) {
		return true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return false
	}
	return s == v
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// plainJSONString reports whether v is written in JSON as itself between quotes.
func plainJSONString(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isJSONContentType reports whether a Content-Type value is application/json (case
// insensitive), optionally with parameters; a charset parameter must be utf-8.
func isJSONContentType(ct string) bool {
	mt, params, hasParams := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return false
	}
	if !hasParams || strings.TrimSpace(params) == "" {
		return true
	}
	_, ps, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := ps["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return true
}

// MatchOperations reports whether a request is one of ops (DESIGN §5.6 step 4, the
// operations part). Only operations whose method and path match are candidates; one
// without JSON members matches outright. The body is decoded only when a candidate has
// JSON members: such an operation needs Content-Type application/json (parameters such
// as "; charset=utf-8" allowed; otherwise it does not match) and a body that decodes
// strictly as a JSON object (DecodeJSONObject); a body that does not is an *Error 400
// invalid_request (reason invalid_request), whatever the other candidates.
func MatchOperations(ops []Operation, method, escapedPath string, contentType string, body []byte) (bool, error) {
	needBody := false
	for i := range ops {
		op := &ops[i]
		if op.Method != method || !MatchPath(op.Path, escapedPath) {
			continue
		}
		if len(op.JSON) == 0 {
			return true, nil
		}
		needBody = true
	}
	if !needBody || !isJSONContentType(contentType) {
		return false, nil
	}
	obj, err := DecodeJSONObject(body)
	if err != nil {
		return false, BadRequest(ReasonInvalidRequest, "request body is not a strict JSON object: %s", truncUTF8(err.Error(), 160))
	}
	for i := range ops {
		op := &ops[i]
		if len(op.JSON) > 0 && op.Method == method && MatchPath(op.Path, escapedPath) && op.bodyMatches(obj) {
			return true, nil
		}
	}
	return false, nil
}

// truncUTF8 cuts s to at most n bytes on a rune boundary.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
