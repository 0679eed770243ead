package forge

import (
	"errors"
	"regexp"
	"strings"
)

// ErrPathInvalid is returned by CheckContentsPath for a refused path.
var ErrPathInvalid = errors.New("forge: invalid contents path")

// CheckContentsPath validates a repository content path (already
// percent-decoded) and returns it unchanged when it is acceptable. It refuses
// an empty path, empty, ".", ".." and ".git" components (".git" compared
// case-insensitively, as git's own verify_path does for case-insensitive file
// systems), backslashes, NUL and other control characters.
func CheckContentsPath(p string) (string, error) {
	if p == "" || len(p) > 4096 {
		return "", ErrPathInvalid
	}
	for _, comp := range strings.Split(p, "/") {
		switch {
		case comp == "", comp == ".", comp == "..", strings.EqualFold(comp, ".git"):
			return "", ErrPathInvalid
		case strings.ContainsAny(comp, "\\"):
			return "", ErrPathInvalid
		}
		for _, r := range comp {
			if r < 0x20 || r == 0x7f || r == '\uFFFD' {
				return "", ErrPathInvalid
			}
		}
	}
	return p, nil
}

var (
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	repoRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// validRepoName reports whether owner/name are safe to use as path components.
func validRepoName(owner, name string) bool {
	if !ownerRE.MatchString(owner) || !repoRE.MatchString(name) {
		return false
	}
	if name == "." || name == ".." || strings.HasSuffix(strings.ToLower(name), ".git") || strings.HasPrefix(name, ".") {
		return false
	}
	return true
}
