package ajwt

// The scope rule of DESIGN §5.3, used by the IDP (workflow validation, mint) and by the
// proxy in both modes. It is the only place that maps a request to the scope it needs.

// RequiredScope returns the scope a request with method needs on resource: on
// ResourceGitHub GET and HEAD need repo:read and every other method repo:write; on
// ResourceOSV every call needs vulns:read. An unknown resource returns false. Methods are
// compared case-sensitively (HTTP methods are case-sensitive, RFC 9110 §9.1), so "get" is
// not a safe method and needs repo:write.
func RequiredScope(resource, method string) (string, bool) {
	switch resource {
	case ResourceGitHub:
		if method == "GET" || method == "HEAD" {
			return ScopeRepoRead, true
		}
		return ScopeRepoWrite, true
	case ResourceOSV:
		return ScopeVulnsRead, true
	}
	return "", false
}

// ParseScope splits an OAuth scope string (RFC 6749 §3.3: tokens separated by U+0020)
// into its tokens, dropping empty ones. Only the space separates: a tab stays part of a
// token, so "repo:read\trepo:write" is one (unknown) token.
func ParseScope(s string) []string {
	n := 0
	for i := 0; i < len(s); {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i < len(s) {
			n++
		}
		for i < len(s) && s[i] != ' ' {
			i++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < len(s); {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		start := i
		for i < len(s) && s[i] != ' ' {
			i++
		}
		if i > start {
			out = append(out, s[start:i])
		}
	}
	return out
}

// ScopeCovers reports whether scopes contain the scope a request with method needs on
// resource (RequiredScope). An unknown resource is never covered.
func ScopeCovers(resource string, scopes []string, method string) bool {
	need, ok := RequiredScope(resource, method)
	if !ok {
		return false
	}
	for _, s := range scopes {
		if s == need {
			return true
		}
	}
	return false
}

// ScopeStringCovers is ScopeCovers over an unparsed, space-separated scope string (a
// token's `scope` claim); it does not allocate.
func ScopeStringCovers(resource, scope, method string) bool {
	need, ok := RequiredScope(resource, method)
	if !ok {
		return false
	}
	for i := 0; i < len(scope); {
		for i < len(scope) && scope[i] == ' ' {
			i++
		}
		start := i
		for i < len(scope) && scope[i] != ' ' {
			i++
		}
		if scope[start:i] == need && i > start {
			return true
		}
	}
	return false
}

// ValidResourceScope reports whether scope may be granted for resource: repo:read and
// repo:write only on ResourceGitHub, vulns:read only on ResourceOSV. Every other scope
// (including ajwt:admin) is never a resource scope.
func ValidResourceScope(resource, scope string) bool {
	switch resource {
	case ResourceGitHub:
		return scope == ScopeRepoRead || scope == ScopeRepoWrite
	case ResourceOSV:
		return scope == ScopeVulnsRead
	}
	return false
}
