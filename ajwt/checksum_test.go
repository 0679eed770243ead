package ajwt

import (
	"encoding/json"
	"strings"
	"testing"
)

func plannerVector() *AgentDefinition {
	zero := 0.0
	return &AgentDefinition{
		AgentID: "planner",
		Prompt:  "\r\n  You are the Planner agent.  \r\nList the files of {repo}, then query OSV.\t\r\n\r\n",
		Tools: []Tool{
			{Name: "query_vulns", Description: "Query OSV for the packages found in the manifests.",
				Parameters: json.RawMessage(`{"type":"object","properties":{"packages":{"type":"array","items":{"type":"string"}}},"required":["packages"]}`)},
			{Name: "list_files", Description: "List the files of the target repository.",
				Parameters: json.RawMessage(`{"type":"object","properties":{}}`)},
		},
		Config: ModelConfig{Provider: "offline", Model: "ajwt-scripted-1", Temperature: &zero},
	}
}

// TestChecksumVector is the test vector of DESIGN §5.2.
func TestChecksumVector(t *testing.T) {
	got, err := Checksum(plannerVector())
	if err != nil {
		t.Fatal(err)
	}
	const want = "sha256:b54b726ef7df787c3e6e5875d0ed83e264491b2d9bb4f9520842602f422eb6af"
	if got != want {
		t.Fatalf("checksum = %s, want %s", got, want)
	}
}

func TestChecksumSensitivity(t *testing.T) {
	base, _ := Checksum(plannerVector())
	two := 0.2
	cases := map[string]func(d *AgentDefinition){
		"prompt word":       func(d *AgentDefinition) { d.Prompt = strings.Replace(d.Prompt, "Planner", "Patcher", 1) },
		"indentation kept":  func(d *AgentDefinition) { d.Prompt = strings.Replace(d.Prompt, "  You", "You", 1) },
		"tool description":  func(d *AgentDefinition) { d.Tools[0].Description += "!" },
		"tool schema":       func(d *AgentDefinition) { d.Tools[1].Parameters = json.RawMessage(`{"type":"object"}`) },
		"temperature":       func(d *AgentDefinition) { d.Config.Temperature = &two },
		"temperature unset": func(d *AgentDefinition) { d.Config.Temperature = nil },
		"agent id":          func(d *AgentDefinition) { d.AgentID = "planner2" },
		"model":             func(d *AgentDefinition) { d.Config.Model = "other" },
	}
	for name, mut := range cases {
		d := plannerVector()
		mut(d)
		got, err := Checksum(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got == base {
			t.Errorf("%s: checksum did not change", name)
		}
	}
	same := map[string]func(d *AgentDefinition){
		"tool order":          func(d *AgentDefinition) { d.Tools[0], d.Tools[1] = d.Tools[1], d.Tools[0] },
		"trailing whitespace": func(d *AgentDefinition) { d.Prompt = strings.Replace(d.Prompt, "agent.", "agent. \t ", 1) },
		"LF instead of CRLF":  func(d *AgentDefinition) { d.Prompt = strings.ReplaceAll(d.Prompt, "\r\n", "\n") },
		"schema key order": func(d *AgentDefinition) {
			d.Tools[0].Parameters = json.RawMessage(`{"required":["packages"],"properties":{"packages":{"items":{"type":"string"},"type":"array"}},"type":"object"}`)
		},
	}
	for name, mut := range same {
		d := plannerVector()
		mut(d)
		if got, _ := Checksum(d); got != base {
			t.Errorf("%s: checksum changed to %s", name, got)
		}
	}
}

func TestNormalizePrompt(t *testing.T) {
	cases := []struct{ in, want string }{
		{"\r\n  a  \r\nb\t\r\n\r\n", "  a\nb"},
		{"a\rb", "a\nb"},
		{"\n\n\n", ""},
		{"e\u0301", "\u00e9"}, // NFC
		{"  x\n\n  y  ", "  x\n\n  y"},
	}
	for _, c := range cases {
		if got := NormalizePrompt(c.in); got != c.want {
			t.Errorf("NormalizePrompt(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestModelConfigRefusesUnknownMembers(t *testing.T) {
	var c ModelConfig
	if err := json.Unmarshal([]byte(`{"provider":"openai","base_url":"http://x"}`), &c); err == nil {
		t.Fatal("config with base_url accepted")
	}
	if err := json.Unmarshal([]byte(`{"provider":"openai","model":"m","temperature":0.2,"max_tokens":10,"top_p":1,"seed":3}`), &c); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestValidateDefinitionHiddenCharacters(t *testing.T) {
	for _, hidden := range []string{"\U000E0041", "\u202E", "\u200B", "\u2066", "\uFEFF"} {
		d := plannerVector()
		d.Prompt += hidden
		if err := ValidateDefinition(d); err == nil {
			t.Errorf("prompt with U+%04X accepted", []rune(hidden)[0])
		}
		d = plannerVector()
		d.Tools[0].Description += hidden
		if err := ValidateDefinition(d); err == nil {
			t.Errorf("tool description with U+%04X accepted", []rune(hidden)[0])
		}
	}
	if err := ValidateDefinition(plannerVector()); err != nil {
		t.Fatalf("vector refused: %v", err)
	}
	d := plannerVector()
	d.Tools = append(d.Tools, d.Tools[0])
	if err := ValidateDefinition(d); err == nil {
		t.Error("duplicate tool name accepted")
	}
	d = plannerVector()
	d.Tools[0].Parameters = json.RawMessage(`[1]`)
	if err := ValidateDefinition(d); err == nil {
		t.Error("array parameters accepted")
	}
}

func BenchmarkChecksum(b *testing.B) {
	d := plannerVector()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Checksum(d); err != nil {
			b.Fatal(err)
		}
	}
}
