package osv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	pep440 "github.com/aquasecurity/go-pep440-version"
	gosemver "golang.org/x/mod/semver"
)

// version is a parsed version of one ordering (Go, npm/SEMVER, PyPI).
type version interface {
	compare(other version) int // other has the same concrete type
	major() string
}

// orderingFor returns the parser of the version ordering used for a range of rangeType in
// ecosystem: ECOSYSTEM ranges (and the versions[] list) use the ecosystem's own ordering;
// SEMVER ranges use SemVer 2.0 (for Go and npm that is the ecosystem's ordering).
func orderingFor(rangeType, ecosystem string) (func(string) (version, error), error) {
	switch ecosystem {
	case EcosystemGo:
		return parseGoVersion, nil
	case EcosystemNPM:
		return parseSemver, nil
	case EcosystemPyPI:
		if rangeType == RangeSemver {
			return parseSemver, nil
		}
		return parsePyPIVersion, nil
	}
	if rangeType == RangeSemver {
		return parseSemver, nil
	}
	return nil, fmt.Errorf("unsupported ecosystem %q", ecosystem)
}

// CompareVersions orders two versions of ecosystem ("Go", "npm", "PyPI"): -1, 0 or +1.
// Go versions are accepted with or without the leading "v" (OSV's Go records have none);
// build metadata such as "+incompatible" does not affect the order.
func CompareVersions(ecosystem, a, b string) (int, error) {
	parse, err := orderingFor(RangeEcosystem, ecosystem)
	if err != nil {
		return 0, err
	}
	va, err := parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := parse(b)
	if err != nil {
		return 0, err
	}
	return va.compare(vb), nil
}

// MajorLine returns the major release line of v in ecosystem ("1" for Go 1.4.2, "2!3" for a
// PyPI version with epoch 2 and release 3.x), used to keep fixes in the current line.
func MajorLine(ecosystem, v string) (string, error) {
	parse, err := orderingFor(RangeEcosystem, ecosystem)
	if err != nil {
		return "", err
	}
	pv, err := parse(v)
	if err != nil {
		return "", err
	}
	return pv.major(), nil
}

type goVersion string // canonical, with "v"

func parseGoVersion(s string) (version, error) {
	v := s
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if !gosemver.IsValid(v) {
		return nil, fmt.Errorf("invalid Go version %q", s)
	}
	return goVersion(v), nil
}

func (v goVersion) compare(o version) int { return gosemver.Compare(string(v), string(o.(goVersion))) }
func (v goVersion) major() string         { return strings.TrimPrefix(gosemver.Major(string(v)), "v") }

type semverVersion struct{ v *semver.Version }

func parseSemver(s string) (version, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fmt.Errorf("invalid semver version %q: %w", s, err)
	}
	return semverVersion{v}, nil
}

func (v semverVersion) compare(o version) int { return v.v.Compare(o.(semverVersion).v) }
func (v semverVersion) major() string         { return strconv.FormatUint(v.v.Major(), 10) }

type pypiVersion struct{ v pep440.Version }

func parsePyPIVersion(s string) (version, error) {
	v, err := pep440.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid PEP 440 version %q: %w", s, err)
	}
	return pypiVersion{v}, nil
}

func (v pypiVersion) compare(o version) int { return v.v.Compare(o.(pypiVersion).v) }

func (v pypiVersion) major() string {
	base := v.v.BaseVersion() // "[N!]X.Y.Z"
	epoch, rel, ok := strings.Cut(base, "!")
	if !ok {
		epoch, rel = "", base
	}
	first, _, _ := strings.Cut(rel, ".")
	if epoch != "" {
		return epoch + "!" + first
	}
	return first
}
