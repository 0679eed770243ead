package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/agentic-jwt/patchcrew/forge"
	"github.com/agentic-jwt/patchcrew/osv/mirror"
)

const forgeAbout = `Runs the local GitHub-REST-compatible forge over bare git repositories in --data (the
offline default upstream for the GitHub side). Every request needs the forge token, read
from the environment variable --token-env names (the proxy's upstream credential). --seed
creates the demo repositories acme/webapp, acme/storefront, acme/billing and acme/infra
if they are missing; 'git log' in the data directory shows the commits agents make.`

func runForge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt forge", "ajwt forge [--addr :8083] --data DIR [--seed] [--token-env FORGE_TOKEN]", forgeAbout)
	addr := c.String("addr", ":8083", "listen address")
	data := c.String("data", "", "directory of the bare repositories (required)")
	seed := c.Bool("seed", false, "create the demo repositories if missing")
	tokenEnv := c.String("token-env", "FORGE_TOKEN", "environment variable holding the forge token")
	tlsCert := c.String("tls-cert", "", "TLS certificate file (PEM)")
	tlsKey := c.String("tls-key", "", "TLS key file (PEM)")
	logFormat := c.String("log-format", "text", "log format: text or json")
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 || *data == "" || (*tlsCert == "") != (*tlsKey == "") {
		return c.usageError(stderr, errors.New("--data is required, --tls-cert and --tls-key go together, and no arguments"))
	}
	log, err := newLogger(stderr, *logFormat)
	if err != nil {
		return c.usageError(stderr, err)
	}
	token := strings.TrimSpace(os.Getenv(*tokenEnv))
	if token == "" {
		fmt.Fprintf(stderr, "ajwt forge: $%s is empty: the forge requires a token on every request\n", *tokenEnv)
		return exitError
	}
	if *seed {
		if err := forge.Seed(ctx, *data); err != nil {
			fmt.Fprintf(stderr, "ajwt forge: seed: %v\n", err)
			return exitError
		}
	}
	srv, err := forge.New(ctx, forge.Config{DataDir: *data, Token: token, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "ajwt forge: %v\n", err)
		return exitError
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt forge: %v\n", err)
		return exitError
	}
	log.Info("forge listening", "addr", ln.Addr().String(), "data", *data)
	if err := serveHTTP(ctx, ln, srv.Handler(), *tlsCert, *tlsKey, log); err != nil {
		fmt.Fprintf(stderr, "ajwt forge: %v\n", err)
		return exitError
	}
	return exitOK
}

const osvMirrorAbout = `Serves the OSV API (POST /v1/query, POST /v1/querybatch, GET /v1/vulns/{id}) from
OSV JSON records: a directory tree of *.json files, an OSV bulk-export zip (per-ecosystem
all.zip), or a directory of such zips, so the real database can be loaded offline.`

func runOSVMirror(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt osv-mirror", "ajwt osv-mirror [--addr :8084] --data DIR|ZIP", osvMirrorAbout)
	addr := c.String("addr", ":8084", "listen address")
	data := c.String("data", "", "directory or zip of OSV records (required)")
	tlsCert := c.String("tls-cert", "", "TLS certificate file (PEM)")
	tlsKey := c.String("tls-key", "", "TLS key file (PEM)")
	logFormat := c.String("log-format", "text", "log format: text or json")
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 || *data == "" || (*tlsCert == "") != (*tlsKey == "") {
		return c.usageError(stderr, errors.New("--data is required, --tls-cert and --tls-key go together, and no arguments"))
	}
	log, err := newLogger(stderr, *logFormat)
	if err != nil {
		return c.usageError(stderr, err)
	}
	db, err := mirror.Load(ctx, *data)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt osv-mirror: %v\n", err)
		return exitError
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt osv-mirror: %v\n", err)
		return exitError
	}
	log.Info("osv mirror listening", "addr", ln.Addr().String(), "records", db.Len())
	if err := serveHTTP(ctx, ln, mirror.NewServer(db, log).Handler(), *tlsCert, *tlsKey, log); err != nil {
		fmt.Fprintf(stderr, "ajwt osv-mirror: %v\n", err)
		return exitError
	}
	return exitOK
}
