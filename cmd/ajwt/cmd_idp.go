package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/agentic-jwt/patchcrew/idp"
)

const idpAbout = `Runs the A-JWT identity provider (authorization server) over a SQLite database.

Clients: with --clients FILE the clients in FILE replace the stored ones. Without it, a
database that already has clients keeps them; a new database gets four generated clients
(admin, patchbot, proxy, reviewer) written with mode 0600 to clients.json next to the
database (an existing clients.json there is loaded instead). The secrets are never logged.`

// idpOptions are the flags of `ajwt idp`.
type idpOptions struct {
	addr, issuer, db, clients string
	tokenTTL, executionTTL    time.Duration
	leeway                    time.Duration
	baseline                  bool
	tlsCert, tlsKey           string
	logFormat                 string
}

// parseIDPFlags parses the flags of `ajwt idp`; see command.parse for code and ok.
func parseIDPFlags(args []string, stdout, stderr io.Writer) (*idpOptions, int, bool) {
	c := newCommand("ajwt idp", "ajwt idp [--addr :8081] [--issuer URL] [--db ajwt.db] [--clients FILE] [--token-ttl 60s] [--baseline] [--tls-cert F --tls-key F]", idpAbout)
	o := &idpOptions{}
	c.StringVar(&o.addr, "addr", ":8081", "listen address")
	c.StringVar(&o.issuer, "issuer", "", "public base URL of the IDP (default http(s)://localhost:<port of --addr>)")
	c.StringVar(&o.db, "db", "ajwt.db", "SQLite database file (created if missing)")
	c.StringVar(&o.clients, "clients", "", "clients file (JSON); replaces the stored clients")
	c.DurationVar(&o.tokenTTL, "token-ttl", 60*time.Second, "intent-token lifetime")
	c.DurationVar(&o.executionTTL, "execution-ttl", time.Hour, "execution (root delegation) lifetime")
	c.DurationVar(&o.leeway, "leeway", 5*time.Second, "clock leeway")
	c.BoolVar(&o.baseline, "baseline", false, "also issue plain OAuth client_credentials tokens for the resources (the scenarios' baseline)")
	c.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS")
	c.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	c.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return nil, code, false
	}
	if c.NArg() > 0 {
		return nil, c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args())), false
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, c.usageError(stderr, errors.New("--tls-cert and --tls-key go together")), false
	}
	for name, d := range map[string]time.Duration{"token-ttl": o.tokenTTL, "execution-ttl": o.executionTTL, "leeway": o.leeway} {
		if d <= 0 {
			return nil, c.usageError(stderr, fmt.Errorf("--%s must be positive", name)), false
		}
	}
	if _, err := newLogger(io.Discard, o.logFormat); err != nil {
		return nil, c.usageError(stderr, err), false
	}
	if o.db == "" {
		return nil, c.usageError(stderr, errors.New("--db is required")), false
	}
	if o.issuer == "" {
		_, port, err := net.SplitHostPort(o.addr)
		if err != nil {
			return nil, c.usageError(stderr, fmt.Errorf("--addr: %w", err)), false
		}
		scheme := "http"
		if o.tlsCert != "" {
			scheme = "https"
		}
		o.issuer = scheme + "://" + net.JoinHostPort("localhost", port)
	}
	return o, exitOK, true
}

func runIDP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseIDPFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	log, _ := newLogger(stderr, o.logFormat)
	if err := serveIDP(ctx, o, log); err != nil {
		log.Error("idp stopped", "err", err)
		return exitError
	}
	return exitOK
}

func serveIDP(ctx context.Context, o *idpOptions, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(o.db), 0o700); err != nil {
		return err
	}
	st, err := idp.OpenSQLite(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := resolveClients(ctx, st, o.db, o.clients, log)
	if err != nil {
		return err
	}
	srv, err := idp.New(ctx, idp.Config{
		Issuer: o.issuer, Store: st, Clients: clients,
		TokenTTL: o.tokenTTL, ExecutionTTL: o.executionTTL, Leeway: o.leeway,
		Baseline: o.baseline, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	log.Info("idp listening", "addr", ln.Addr().String(), "issuer", o.issuer, "db", o.db,
		"tls", o.tlsCert != "", "baseline", o.baseline, "token_ttl", o.tokenTTL.String())
	return serveHTTP(ctx, ln, srv.Handler(), o.tlsCert, o.tlsKey, log)
}

// resolveClients decides the client set of an IDP start: the --clients file if given;
// else nil (keep the stored clients) if the store has some; else the clients.json next
// to the database, generated if it does not exist. Only paths are logged.
func resolveClients(ctx context.Context, st idp.Store, dbPath, clientsPath string, log *slog.Logger) (*idp.ClientsFile, error) {
	if clientsPath != "" {
		cf, err := idp.LoadClientsFile(clientsPath)
		if err != nil {
			return nil, err
		}
		log.Info("clients loaded", "file", clientsPath, "count", len(cf.Clients))
		return cf, nil
	}
	has, err := idp.HasClients(ctx, st)
	if err != nil {
		return nil, err
	}
	if has {
		log.Info("keeping the clients stored in the database", "db", dbPath)
		return nil, nil
	}
	path := filepath.Join(filepath.Dir(dbPath), "clients.json")
	cf, generated, err := loadOrGenerateClients(path)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Info("generated clients (secrets are in the file, mode 0600)", "file", path, "count", len(cf.Clients))
	} else {
		log.Info("clients loaded", "file", path, "count", len(cf.Clients))
	}
	return cf, nil
}

// loadOrGenerateClients loads path if it exists, else generates it.
func loadOrGenerateClients(path string) (cf *idp.ClientsFile, generated bool, err error) {
	if _, err := os.Stat(path); err == nil {
		cf, err := idp.LoadClientsFile(path)
		return cf, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	cf, err = idp.GenerateClientsFile(path)
	return cf, true, err
}

// serveHTTP serves h on ln until ctx is done, then shuts down gracefully: new
// connections stop at once, in-flight requests get a short grace period, long-lived
// streams (the audit SSE) are then cancelled.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string, log *slog.Logger) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(func() { time.AfterFunc(2*time.Second, cancelBase) })
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- hs.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

const rotateAbout = `Rotates the IDP's signing key (POST /v1/keys/rotate with an admin token) and prints
the IDP's answer. Admin credentials as for 'ajwt register': AJWT_ADMIN_ID (default
"admin") and AJWT_ADMIN_SECRET, or --admin-secret-file.`

func runRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt idp rotate-key", "ajwt idp rotate-key [--idp-url URL]", rotateAbout)
	var af adminFlags
	af.register(c)
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 {
		return c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args()))
	}
	cl, err := af.client(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt idp rotate-key: %v\n", err)
		return exitError
	}
	resp, err := cl.do(ctx, http.MethodPost, "/v1/keys/rotate", nil)
	return printResult(stdout, stderr, "ajwt idp rotate-key", resp, err)
}
