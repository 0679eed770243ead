package osv

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	pep440 "github.com/aquasecurity/go-pep440-version"
)

// PEP 508 project name.
var pep508Name = regexp.MustCompile(`^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$`)

var pep503Sep = regexp.MustCompile(`[-_.]+`)

// NormalizePyPIName normalises a Python project name as PEP 503 specifies: lower case, every
// run of "-", "_" and "." replaced by a single "-".
func NormalizePyPIName(name string) string {
	return pep503Sep.ReplaceAllString(strings.ToLower(name), "-")
}

// ParseRequirements parses a pip requirements file. Only exact pins ("==" or "===", no
// wildcard) become Packages (names normalised per PEP 503, all Direct: a requirements file
// does not tell them apart); every other requirement line is reported as Skipped with the
// reason. Comments, blank lines, line continuations, environment markers ("; python_version
// < '3.10'"), extras ("pkg[extra]==1.0") and trailing per-requirement options ("--hash=…")
// are handled; option lines ("-r", "-c", "-e", "--index-url", …) are Skipped because they are
// not followed.
func ParseRequirements(manifest string, data []byte) ([]Package, []Skipped, error) {
	if err := checkSize(manifest, data); err != nil {
		return nil, nil, err
	}
	var pkgs []Package
	var skipped []Skipped
	skip := func(line int, text, reason string) {
		skipped = append(skipped, Skipped{Manifest: manifest, Line: line, Text: text, Reason: reason})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), MaxManifestSize+1)
	lineNo, start := 0, 0
	var logical strings.Builder
	for sc.Scan() {
		lineNo++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		if logical.Len() == 0 {
			start = lineNo
		}
		// PEP 508/pip: a comment starts at "#" at line start or after whitespace.
		raw = stripComment(raw)
		if strings.HasSuffix(raw, `\`) {
			logical.WriteString(strings.TrimSuffix(raw, `\`))
			logical.WriteByte(' ')
			continue
		}
		logical.WriteString(raw)
		text := strings.TrimSpace(logical.String())
		logical.Reset()
		if text == "" {
			continue
		}
		p, reason := parseRequirementLine(text)
		if reason != "" {
			skip(start, text, reason)
			continue
		}
		p.Manifest = manifest
		pkgs = append(pkgs, p)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, &ParseError{Manifest: manifest, Line: lineNo + 1, Err: err}
	}
	if text := strings.TrimSpace(logical.String()); text != "" {
		if p, reason := parseRequirementLine(text); reason != "" {
			skip(start, text, reason)
		} else {
			p.Manifest = manifest
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, skipped, nil
}

func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

// parseRequirementLine returns a Package, or the reason the line is skipped.
func parseRequirementLine(text string) (Package, string) {
	if strings.HasPrefix(text, "-") {
		opt, _, _ := strings.Cut(text, " ")
		opt, _, _ = strings.Cut(opt, "=")
		switch opt {
		case "-r", "--requirement", "-c", "--constraint":
			return Package{}, fmt.Sprintf("option %s: referenced file is not followed", opt)
		case "-e", "--editable":
			return Package{}, "editable requirement has no registry version"
		}
		return Package{}, fmt.Sprintf("option line %s ignored", opt)
	}
	// Per-requirement options such as --hash come after the requirement.
	if i := strings.Index(text, " --"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	// Environment markers.
	if i := strings.IndexByte(text, ';'); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	if strings.Contains(text, "://") || strings.Contains(text, " @ ") || strings.Contains(text, "@ ") {
		return Package{}, "direct URL or path reference has no registry version"
	}
	nameEnd := strings.IndexAny(text, "[=<>!~( \t")
	name, rest := text, ""
	if nameEnd >= 0 {
		name, rest = text[:nameEnd], strings.TrimSpace(text[nameEnd:])
	}
	if !pep508Name.MatchString(name) {
		return Package{}, fmt.Sprintf("not a valid requirement: project name %q", name)
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Package{}, "unterminated extras"
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(rest, "("), ")"))
	if rest == "" {
		return Package{}, "unpinned: no version specifier"
	}
	if strings.Contains(rest, ",") {
		return Package{}, fmt.Sprintf("unpinned: version range %q", rest)
	}
	var version string
	switch {
	case strings.HasPrefix(rest, "==="):
		version = strings.TrimSpace(rest[3:])
	case strings.HasPrefix(rest, "=="):
		version = strings.TrimSpace(rest[2:])
	default:
		return Package{}, fmt.Sprintf("unpinned: specifier %q is not an exact == pin", rest)
	}
	if strings.HasSuffix(version, ".*") {
		return Package{}, fmt.Sprintf("unpinned: wildcard pin %q", version)
	}
	if _, err := pep440.Parse(version); err != nil || version == "" {
		return Package{}, fmt.Sprintf("invalid PEP 440 version %q", version)
	}
	return Package{Ecosystem: EcosystemPyPI, Name: NormalizePyPIName(name), Version: version, Direct: true}, ""
}
