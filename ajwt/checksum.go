package ajwt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"golang.org/x/text/unicode/norm"
)

// ChecksumVersion is the `v` member of the checksum input (DESIGN §5.2).
const ChecksumVersion = 1

// Limits on agent definitions, so a registration cannot make the IDP hash megabytes.
const (
	MaxPromptBytes     = 64 << 10
	MaxToolCount       = 64
	MaxToolSchemaBytes = 16 << 10
	MaxIDLength        = 64
)

// Tool is one tool of an agent definition: the name, description and JSON-Schema
// parameters the model is shown. Parameters nil or empty hashes as `{}`.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ModelConfig holds the model settings that are part of an agent's identity. Only the
// members that are set are hashed; there is no place for a URL, key or secret.
type ModelConfig struct {
	Provider    string   `json:"provider,omitempty"`
	Model       string   `json:"model,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	MaxTokens   *int64   `json:"max_tokens,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
}

// UnmarshalJSON decodes a config and refuses any member outside DESIGN §5.2's list.
func (c *ModelConfig) UnmarshalJSON(b []byte) error {
	type plain ModelConfig
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	*c = ModelConfig(p)
	return nil
}

// AgentDefinition is the hashed part of an agent: its id, system prompt template,
// tools and model config.
type AgentDefinition struct {
	AgentID string      `json:"agent_id"`
	Prompt  string      `json:"prompt"`
	Tools   []Tool      `json:"tools"`
	Config  ModelConfig `json:"config"`
}

// NormalizePrompt applies DESIGN §5.2's normalize(p): NFC; CRLF and lone CR to LF;
// trailing spaces and tabs stripped from every line; leading and trailing empty lines
// dropped. Indentation is kept.
func NormalizePrompt(p string) string {
	p = norm.NFC.String(p)
	p = strings.ReplaceAll(p, "\r\n", "\n")
	p = strings.ReplaceAll(p, "\r", "\n")
	lines := strings.Split(p, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	start, end := 0, len(lines)
	for start < end && lines[start] == "" {
		start++
	}
	for end > start && lines[end-1] == "" {
		end--
	}
	return strings.Join(lines[start:end], "\n")
}

// checksumInput is the JSON object whose JCS form is hashed.
type checksumInput struct {
	V       int             `json:"v"`
	AgentID string          `json:"agent_id,omitempty"`
	Prompt  string          `json:"prompt"`
	Tools   []checksumTool  `json:"tools"`
	Config  json.RawMessage `json:"config"`
}

type checksumTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// CanonicalDefinition returns the RFC 8785 canonical JSON that the checksum hashes. With
// withID false the `agent_id` member is omitted: two definitions with equal canonical
// forms without ids are duplicates (DESIGN §5.3 `duplicate_checksum`).
func CanonicalDefinition(d *AgentDefinition, withID bool) ([]byte, error) {
	in := checksumInput{V: ChecksumVersion, Prompt: NormalizePrompt(d.Prompt), Tools: make([]checksumTool, len(d.Tools))}
	if withID {
		in.AgentID = d.AgentID
		if in.AgentID == "" {
			return nil, fmt.Errorf("checksum: empty agent_id")
		}
	}
	for i, t := range d.Tools {
		params := t.Parameters
		if len(bytes.TrimSpace(params)) == 0 || bytes.Equal(bytes.TrimSpace(params), []byte("null")) {
			params = json.RawMessage("{}")
		}
		in.Tools[i] = checksumTool{Name: t.Name, Description: t.Description, Parameters: params}
	}
	sort.Slice(in.Tools, func(i, j int) bool { return in.Tools[i].Name < in.Tools[j].Name })
	cfg, err := json.Marshal(d.Config)
	if err != nil {
		return nil, fmt.Errorf("checksum: config: %w", err)
	}
	in.Config = cfg
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("checksum: canonicalise: %w", err)
	}
	return out, nil
}

// Checksum computes the agent checksum of DESIGN §5.2:
// "sha256:" + hex(SHA-256(JCS({v, agent_id, prompt, tools, config}))).
func Checksum(d *AgentDefinition) (string, error) {
	c, err := CanonicalDefinition(d, true)
	if err != nil {
		return "", err
	}
	return SHA256Digest(c), nil
}

// SHA256Digest returns "sha256:" + lowercase hex of SHA-256(b).
func SHA256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// JCSDigest canonicalises v (any JSON-marshalable value) with RFC 8785 and returns its
// SHA256Digest.
func JCSDigest(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	c, err := jcsTransform(raw)
	if err != nil {
		return "", err
	}
	return SHA256Digest(c), nil
}

// jcsTransform canonicalises JSON text with RFC 8785.
func jcsTransform(raw []byte) ([]byte, error) { return jcs.Transform(raw) }

// ValidateDefinition checks what registration requires of a definition beyond being
// hashable: sizes, unique tool names, parameters that are JSON objects, and no hidden
// characters (Unicode tags, bidi controls, zero-width characters) in the prompt or in
// tool names and descriptions.
func ValidateDefinition(d *AgentDefinition) error {
	if !ValidID(d.AgentID) {
		return fmt.Errorf("agent_id must match [a-z0-9][a-z0-9_.-]{0,63}")
	}
	if len(d.Prompt) > MaxPromptBytes {
		return fmt.Errorf("prompt exceeds %d bytes", MaxPromptBytes)
	}
	if strings.TrimSpace(d.Prompt) == "" {
		return fmt.Errorf("prompt is empty")
	}
	if err := checkText("prompt", d.Prompt); err != nil {
		return err
	}
	if len(d.Tools) > MaxToolCount {
		return fmt.Errorf("more than %d tools", MaxToolCount)
	}
	seen := map[string]bool{}
	for _, t := range d.Tools {
		if t.Name == "" || len(t.Name) > MaxIDLength {
			return fmt.Errorf("tool name must be 1..%d bytes", MaxIDLength)
		}
		if seen[t.Name] {
			return fmt.Errorf("tool %q is listed twice", t.Name)
		}
		seen[t.Name] = true
		if err := checkText("tool "+t.Name+" name", t.Name); err != nil {
			return err
		}
		if err := checkText("tool "+t.Name+" description", t.Description); err != nil {
			return err
		}
		if len(t.Parameters) > MaxToolSchemaBytes {
			return fmt.Errorf("tool %q: parameters exceed %d bytes", t.Name, MaxToolSchemaBytes)
		}
		if p := bytes.TrimSpace(t.Parameters); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(p, &obj); err != nil {
				return fmt.Errorf("tool %q: parameters must be a JSON Schema object", t.Name)
			}
		}
	}
	c := d.Config
	for _, f := range []struct{ name, v string }{{"provider", c.Provider}, {"model", c.Model}} {
		if len(f.v) > 128 {
			return fmt.Errorf("config %s exceeds 128 bytes", f.name)
		}
		if err := checkText("config "+f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// ValidID reports whether s is a valid agent, workflow or step id: 1–64 characters of
// lowercase letters, digits, `_`, `.` and `-`, starting with a letter or digit.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkText refuses invalid UTF-8 and hidden characters that can carry instructions a
// human reviewer does not see.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for i, r := range s {
		if HiddenRune(r) {
			return fmt.Errorf("%s contains hidden character U+%04X at byte %d", what, r, i)
		}
	}
	return nil
}

// HiddenRune reports whether r is a Unicode tag character (U+E0000–U+E007F), a bidi
// control, or a zero-width character.
func HiddenRune(r rune) bool {
	switch {
	case r >= 0xE0000 && r <= 0xE007F: // tags
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069: // bidi
		return true
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF, r == 0x180E: // zero width
		return true
	}
	return false
}
