package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/agentic-jwt/patchcrew/resourceproxy"
)

const proxyAbout = `Runs the A-JWT resource proxy in front of GitHub (or the local forge) and OSV (or the
local mirror): /github/... and /osv/... are validated (path hygiene, intent token, DPoP
proof, revocation feed, scope and operations) and forwarded with the proxy's own upstream
credentials. --mode oauth runs the plain bearer-token baseline instead.

The proxy's client secret (a resource client of the IDP, used for the revocation feed) is
read from $AJWT_CLIENT_SECRET or --client-secret-file, never from a flag value. Upstream
tokens come from the environment variables that --github-token-env and --osv-token-env
name.`

// proxyOptions are the flags of `ajwt proxy`.
type proxyOptions struct {
	addr, publicURL, idpURL, issuer, clientID, secretFile string
	githubURL, githubTokenEnv, osvURL, osvTokenEnv        string
	mode                                                  string
	maxRPS                                                int
	leeway                                                time.Duration
	bodyLimit                                             int64
	requireNonce                                          bool
	tlsCert, tlsKey                                       string
	logFormat                                             string
}

// parseProxyFlags parses the flags of `ajwt proxy`; see command.parse for code and ok.
func parseProxyFlags(args []string, stdout, stderr io.Writer) (*proxyOptions, int, bool) {
	c := newCommand("ajwt proxy", "ajwt proxy [--addr :8082] [--public-url URL] [--idp-url URL] [--client-id proxy] [--github-url URL] [--github-token-env GITHUB_TOKEN] [--osv-url URL] [--mode ajwt|oauth] [--max-rps N]", proxyAbout)
	o := &proxyOptions{}
	c.StringVar(&o.addr, "addr", ":8082", "listen address")
	c.StringVar(&o.publicURL, "public-url", "", "public base URL of the proxy, the base of every DPoP htu (default http(s)://localhost:<port of --addr>)")
	c.StringVar(&o.idpURL, "idp-url", "http://localhost:8081", "base URL of the IDP (metadata, JWKS, revocation feed)")
	c.StringVar(&o.issuer, "issuer", "", "expected token issuer (default: the issuer of the IDP's metadata, which must equal it when set)")
	c.StringVar(&o.clientID, "client-id", "proxy", "client_id of the proxy's resource client at the IDP")
	c.StringVar(&o.secretFile, "client-secret-file", "", "read the client secret from this file instead of $AJWT_CLIENT_SECRET")
	c.StringVar(&o.githubURL, "github-url", "https://api.github.com", "upstream for /github/... (empty: not served)")
	c.StringVar(&o.githubTokenEnv, "github-token-env", "GITHUB_TOKEN", "environment variable holding the GitHub (or forge) token (empty: no credential)")
	c.StringVar(&o.osvURL, "osv-url", "https://api.osv.dev", "upstream for /osv/... (empty: not served)")
	c.StringVar(&o.osvTokenEnv, "osv-token-env", "", "environment variable holding an OSV upstream token (empty: none)")
	c.StringVar(&o.mode, "mode", resourceproxy.ModeAJWT, "ajwt (A-JWT intent tokens with DPoP) or oauth (the bearer-token baseline)")
	c.IntVar(&o.maxRPS, "max-rps", 1000, "peak DPoP proofs per second; the replay cache holds max-rps × 65 proofs")
	c.DurationVar(&o.leeway, "leeway", 5*time.Second, "clock leeway for token exp/nbf")
	c.Int64Var(&o.bodyLimit, "body-limit", 1<<20, "largest request body read and forwarded, in bytes")
	c.BoolVar(&o.requireNonce, "require-nonce", false, "require DPoP server nonces (RFC 9449 §8)")
	c.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS")
	c.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	c.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return nil, code, false
	}
	if c.NArg() > 0 {
		return nil, c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args())), false
	}
	if o.mode != resourceproxy.ModeAJWT && o.mode != resourceproxy.ModeOAuth {
		return nil, c.usageError(stderr, fmt.Errorf("--mode must be ajwt or oauth, not %q", o.mode)), false
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, c.usageError(stderr, errors.New("--tls-cert and --tls-key go together")), false
	}
	if o.maxRPS <= 0 || o.leeway <= 0 || o.bodyLimit <= 0 {
		return nil, c.usageError(stderr, errors.New("--max-rps, --leeway and --body-limit must be positive")), false
	}
	if o.githubURL == "" && o.osvURL == "" {
		return nil, c.usageError(stderr, errors.New("at least one of --github-url and --osv-url is required")), false
	}
	if _, err := newLogger(io.Discard, o.logFormat); err != nil {
		return nil, c.usageError(stderr, err), false
	}
	if o.publicURL == "" {
		_, port, err := net.SplitHostPort(o.addr)
		if err != nil {
			return nil, c.usageError(stderr, fmt.Errorf("--addr: %w", err)), false
		}
		scheme := "http"
		if o.tlsCert != "" {
			scheme = "https"
		}
		o.publicURL = scheme + "://" + net.JoinHostPort("localhost", port)
	}
	return o, exitOK, true
}

// clientSecret returns the proxy's secret from --client-secret-file or
// $AJWT_CLIENT_SECRET ("" when neither is set).
func (o *proxyOptions) clientSecret() (string, error) {
	if o.secretFile != "" {
		b, err := readLimited(o.secretFile, 64<<10)
		if err != nil {
			return "", fmt.Errorf("client secret file: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("client secret file %s is empty", o.secretFile)
		}
		return s, nil
	}
	return os.Getenv("AJWT_CLIENT_SECRET"), nil
}

// upstreamCredential reads the token named by env; "" env means no credential.
func upstreamCredential(flagName, env string) (string, error) {
	if env == "" {
		return "", nil
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return "", fmt.Errorf("--%s names $%s, which is not set (use --%s= for no credential)", flagName, env, flagName)
	}
	return "token " + v, nil
}

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseProxyFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	log, _ := newLogger(stderr, o.logFormat)
	if err := serveProxy(ctx, o, log); err != nil {
		log.Error("proxy stopped", "err", err)
		return exitError
	}
	return exitOK
}

func serveProxy(ctx context.Context, o *proxyOptions, log *slog.Logger) error {
	secret, err := o.clientSecret()
	if err != nil {
		return err
	}
	if secret == "" && o.mode == resourceproxy.ModeAJWT {
		return errors.New("no client secret: set AJWT_CLIENT_SECRET or --client-secret-file")
	}
	ups := map[string]resourceproxy.Upstream{}
	if o.githubURL != "" {
		cred, err := upstreamCredential("github-token-env", o.githubTokenEnv)
		if err != nil {
			return err
		}
		ups[ajwt.ResourceGitHub] = resourceproxy.Upstream{URL: o.githubURL, Credential: cred}
	}
	if o.osvURL != "" {
		cred, err := upstreamCredential("osv-token-env", o.osvTokenEnv)
		if err != nil {
			return err
		}
		ups[ajwt.ResourceOSV] = resourceproxy.Upstream{URL: o.osvURL, Credential: cred}
	}
	p, err := resourceproxy.New(ctx, resourceproxy.Config{
		Mode: o.mode, PublicURL: o.publicURL, IDPURL: o.idpURL, Issuer: o.issuer,
		ClientID: o.clientID, ClientSecret: secret, Upstreams: ups, MaxRPS: o.maxRPS,
		Leeway: o.leeway, BodyLimit: o.bodyLimit, RequireNonce: o.requireNonce, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		err := p.Run(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			cancel() // e.g. the IDP's issuer is not the configured one
		}
		runErr <- err
	}()
	log.Info("proxy listening", "addr", ln.Addr().String(), "public_url", o.publicURL, "idp_url", o.idpURL,
		"mode", o.mode, "tls", o.tlsCert != "", "github", o.githubURL, "osv", o.osvURL, "max_rps", o.maxRPS)
	serr := serveHTTP(ctx, ln, p.Handler(), o.tlsCert, o.tlsKey, log)
	cancel()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return serr
}
