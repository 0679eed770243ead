package resourceproxy

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// forwardedHeaders is the allow-list of request headers sent upstream (DESIGN §5.6
// step 5). Authorization and DPoP are never among them.
var forwardedHeaders = []string{"Accept", "Content-Type", "User-Agent", "If-None-Match", "X-GitHub-Api-Version"}

// requestIDHeader carries a request id to the upstream and back to the client.
const requestIDHeader = "X-Request-Id"

// newForwarder builds the reverse proxy of one route: httputil.ReverseProxy with
// Rewrite (so hop-by-hop and X-Forwarded-* headers of the client are dropped before we
// see the request).
func (p *Proxy) newForwarder(rt *route) http.Handler {
	upPrefix := rt.upstream.Scheme + "://" + rt.upstream.Host + rt.upstream.EscapedPath()
	pubPrefix := p.cfg.PublicURL + "/" + rt.name
	return &httputil.ReverseProxy{
		Transport: p.transport,
		ErrorLog:  slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		Rewrite: func(pr *httputil.ProxyRequest) {
			in, out := pr.In, pr.Out
			// The resource prefix is stripped; the rest of the escaped path and the
			// raw query go on unchanged.
			escaped := in.URL.EscapedPath()
			rest := escaped[len("/"+rt.name):]
			u := *rt.upstream
			u.RawPath = rt.upstream.EscapedPath() + rest
			u.Path = rt.upstream.Path + unescapePath(rest)
			u.RawQuery = in.URL.RawQuery
			u.Fragment, u.RawFragment = "", ""
			out.URL = &u
			out.Host = ""
			h := http.Header{}
			for _, k := range forwardedHeaders {
				if v := in.Header.Values(k); len(v) > 0 {
					h[k] = append([]string(nil), v...)
				}
			}
			if _, ok := h["User-Agent"]; !ok {
				h["User-Agent"] = []string{""} // no Go default User-Agent
			}
			h.Set(requestIDHeader, requestID(in))
			if rt.cred != "" {
				h.Set("Authorization", rt.cred)
			}
			out.Header = h
		},
		ModifyResponse: func(res *http.Response) error {
			h := res.Header
			h.Del("Set-Cookie")
			h.Del("Set-Cookie2")
			if loc := h.Get("Location"); loc != "" {
				h.Set("Location", rewriteURLs(loc, upPrefix, pubPrefix))
			}
			if links := h.Values("Link"); len(links) > 0 {
				out := make([]string, len(links))
				for i, l := range links {
					out[i] = rewriteURLs(l, upPrefix, pubPrefix)
				}
				h["Link"] = out
			}
			// The handler already set our request id on the response; an upstream's
			// own would be added next to it.
			h.Del(requestIDHeader)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if d, ok := r.Context().Value(decisionKey).(*decision); ok {
				d.upstreamErr = true
			}
			p.log.WarnContext(r.Context(), "upstream request failed", "resource", rt.resource, "err", err)
			w.Header().Set(requestIDHeader, requestID(r))
			writeError(w, ajwt.NewError(http.StatusBadGateway, ajwt.CodeServerError, ajwt.ReasonUpstreamError, "the upstream did not answer"), "")
		},
	}
}

// rewriteURLs replaces every occurrence of the upstream base from in s (followed by
// "/", "?", "#", ">", a quote or the end, so "https://up/apix" is not "https://up/api")
// with to.
func rewriteURLs(s, from, to string) string {
	if !strings.Contains(s, from) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, from)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(from)
		b.WriteString(s[:i])
		if end == len(s) || strings.IndexByte("/?#>\"' ,;", s[end]) >= 0 {
			b.WriteString(to)
		} else {
			b.WriteString(from)
		}
		s = s[end:]
	}
}

// requestID returns the request's X-Request-Id, setting a fresh one first when it is
// absent or not a short printable token.
func requestID(r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if !validRequestID(id) {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		id = hex.EncodeToString(b[:])
		r.Header.Set(requestIDHeader, id)
	}
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// unescapePath decodes an escaped path that passed path hygiene (so it holds no
// escaped "/"); on a decoding error the escaped form is kept.
func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(h<<4 | l)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
