package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/agentic-jwt/patchcrew/forge"
	"github.com/agentic-jwt/patchcrew/osv/mirror"
)

// serverFlags are the flags every upstream server command shares.
type serverFlags struct {
	addr, data, tlsCert, tlsKey, logFormat string
}

func (f *serverFlags) register(c *command, addr, dataHelp string) {
	c.StringVar(&f.addr, "addr", addr, "listen address")
	c.StringVar(&f.data, "data", "", dataHelp+" (required)")
	c.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	c.StringVar(&f.tlsKey, "tls-key", "", "TLS key file (PEM)")
	c.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
}

// parse parses args and checks the shared flags; ok false means return code.
func (f *serverFlags) parse(c *command, args []string, stdout, stderr io.Writer) (log *slog.Logger, code int, ok bool) {
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return nil, code, false
	}
	if c.NArg() > 0 || f.data == "" || (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, c.usageError(stderr, errors.New("--data is required, --tls-cert and --tls-key go together, and no arguments")), false
	}
	log, err := newLogger(stderr, f.logFormat)
	if err != nil {
		return nil, c.usageError(stderr, err), false
	}
	return log, exitOK, true
}

// serve listens on --addr and serves h until ctx ends; errors are reported as name's.
func (f *serverFlags) serve(ctx context.Context, name string, h http.Handler, log *slog.Logger, stderr io.Writer, attrs ...any) int {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
	log.Info(name+" listening", append([]any{"addr", ln.Addr().String()}, attrs...)...)
	if err := serveHTTP(ctx, ln, h, f.tlsCert, f.tlsKey, log); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
	return exitOK
}

const forgeAbout = `Runs the local GitHub-REST-compatible forge over bare git repositories in --data (the
offline default upstream for the GitHub side). Every request needs the forge token, read
from the environment variable --token-env names (the proxy's upstream credential). --seed
creates the demo repositories acme/webapp, acme/storefront, acme/billing and acme/infra
if they are missing; 'git log' in the data directory shows the commits agents make.`

func runForge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt forge", "ajwt forge [--addr :8083] --data DIR [--seed] [--token-env FORGE_TOKEN]", forgeAbout)
	var f serverFlags
	f.register(c, ":8083", "directory of the bare repositories")
	seed := c.Bool("seed", false, "create the demo repositories if missing")
	tokenEnv := c.String("token-env", "FORGE_TOKEN", "environment variable holding the forge token")
	log, code, ok := f.parse(c, args, stdout, stderr)
	if !ok {
		return code
	}
	token := strings.TrimSpace(os.Getenv(*tokenEnv))
	if token == "" {
		fmt.Fprintf(stderr, "ajwt forge: $%s is empty: the forge requires a token on every request\n", *tokenEnv)
		return exitError
	}
	if *seed {
		if err := forge.Seed(ctx, f.data); err != nil {
			fmt.Fprintf(stderr, "ajwt forge: seed: %v\n", err)
			return exitError
		}
	}
	srv, err := forge.New(ctx, forge.Config{DataDir: f.data, Token: token, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "ajwt forge: %v\n", err)
		return exitError
	}
	return f.serve(ctx, "ajwt forge", srv.Handler(), log, stderr, "data", f.data)
}

const osvMirrorAbout = `Serves the OSV API (POST /v1/query, POST /v1/querybatch, GET /v1/vulns/{id}) from
OSV JSON records: a directory tree of *.json files, an OSV bulk-export zip (per-ecosystem
all.zip), or a directory of such zips, so the real database can be loaded offline.`

func runOSVMirror(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt osv-mirror", "ajwt osv-mirror [--addr :8084] --data DIR|ZIP", osvMirrorAbout)
	var f serverFlags
	f.register(c, ":8084", "directory or zip of OSV records")
	log, code, ok := f.parse(c, args, stdout, stderr)
	if !ok {
		return code
	}
	db, err := mirror.Load(ctx, f.data)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt osv-mirror: %v\n", err)
		return exitError
	}
	return f.serve(ctx, "ajwt osv-mirror", mirror.NewServer(db, log).Handler(), log, stderr, "records", db.Len())
}
