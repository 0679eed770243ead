package ajwt

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckStrictJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		in string
		ok bool
	}{
		{`{}`, true},
		{`[]`, true},
		{`"x"`, true},
		{`1.5e3`, true},
		{`null`, true},
		{` {"a":[1,{"b":2},{"b":3}],"c":{"a":1}} `, true}, // the same name in different objects
		{`{"a":1,"A":1}`, true},
		{`{"é":1,"e\u0301":1}`, true}, // not the same code points
		{deep(MaxJSONDepth + 1), true},
		{deep(MaxJSONDepth + 2), false},
		{``, false},
		{` `, false},
		{`{"a":1,"a":1}`, false},
		{`{"a":1,"\u0061":1}`, false},
		{`{"a":{"b":1,"b":2}}`, false},
		{`[{"b":1,"b":2}]`, false},
		{"\"\xff\"", false},
		{"{\"\xc3\x28\":1}", false},
		{`{"a":1}x`, false},
		{`{"a":1} {}`, false},
		{`1 2`, false},
		{`{"a":1,}`, false},
		{`[1,]`, false},
		{`{"a"}`, false},
		{`{a:1}`, false},
		{`'a'`, false},
		{`{"a":01}`, false},
		{`{"a":NaN}`, false},
		{`["\x"]`, false},
		{`{"a":1`, false},
	}
	for _, c := range cases {
		if err := CheckStrictJSON([]byte(c.in)); (err == nil) != c.ok {
			t.Errorf("CheckStrictJSON(%q) = %v, want ok %v", c.in, err, c.ok)
		}
	}
}

func FuzzCheckStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1,"a":2}`, `{"a":[1,{"b":2,"b":3}]}`, `[1,2,3]`, `"\ud800"`, `{"\ud800":1,"\udc00":2}`,
		`{"message":"m","content":"bW9k","branch":"ajwt/x"}`, `{"a":1} x`, "\"\xff\"", `1e999`, `-0`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40), `{"a":"\u0000"}`, ` null `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckStrictJSON(b)
		valid := json.Valid(b) && utf8.Valid(b)
		if err == nil {
			if !valid {
				t.Fatalf("CheckStrictJSON accepted invalid JSON %q", b)
			}
			var v any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // 1e999 is valid JSON, though not a float64
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("accepted %q, but Unmarshal: %v", b, err)
			}
			return
		}
		// Valid UTF-8 JSON is refused only for a duplicate name, excessive depth or an
		// unpaired surrogate escape.
		if valid && !strings.Contains(err.Error(), "duplicate member") && !strings.Contains(err.Error(), "nested too deeply") &&
			!strings.Contains(err.Error(), "unpaired surrogate") {
			t.Fatalf("CheckStrictJSON(%q) = %v for valid JSON", b, err)
		}
	})
}
