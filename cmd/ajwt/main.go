// Command ajwt is the single binary of the A-JWT reference implementation: the identity
// provider, the admin CLI (register, audit verify, shim-checksum) and the demo.
//
// Every flag can also be set from the environment as AJWT_<FLAG> (upper case, dashes
// replaced by underscores); a flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad command line
)

const topUsage = `usage: ajwt <command> [flags]

commands:
  idp                 run the identity provider (authorization server)
  idp rotate-key      rotate the IDP's signing key (admin)
  proxy               run the resource proxy in front of GitHub and OSV
  forge               run the local GitHub-compatible forge (bare git repositories)
  osv-mirror          serve the OSV API from local OSV records
  register            register an agent, workflow or shim build (admin)
  shim-checksum       print this binary's shim checksum
  audit verify        verify the audit hash chain of a database
  demo                run the protocol against an in-process IDP

Run 'ajwt <command> -h' for a command's flags. Every flag can also be set from the
environment as AJWT_<FLAG> (upper case, dashes -> underscores); flags win.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args (without the program name) and returns the exit
// status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	case "idp":
		if len(rest) > 0 && rest[0] == "rotate-key" {
			return runRotateKey(ctx, rest[1:], stdout, stderr)
		}
		return runIDP(ctx, rest, stdout, stderr)
	case "proxy":
		return runProxy(ctx, rest, stdout, stderr)
	case "forge":
		return runForge(ctx, rest, stdout, stderr)
	case "osv-mirror":
		return runOSVMirror(ctx, rest, stdout, stderr)
	case "register":
		return runRegister(ctx, rest, stdout, stderr)
	case "shim-checksum":
		return runShimChecksum(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ajwt: unknown command %q\n\n%s", cmd, topUsage)
		return exitUsage
	}
}

// command is one subcommand's flag set with its usage line.
type command struct {
	*flag.FlagSet
	usage string // e.g. "ajwt idp [flags]"
	about string // one paragraph shown by -h
}

func newCommand(name, usage, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints errors and usage itself
	return &command{FlagSet: fs, usage: usage, about: about}
}

// parse applies the environment (AJWT_<FLAG>) and then args. When it returns ok ==
// false, the caller returns code: 0 after -h/--help (usage on stdout), 2 after a bad
// flag or environment value (error and usage line on stderr).
func (c *command) parse(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if err := applyEnv(c.FlagSet, os.LookupEnv); err != nil {
		return c.usageError(stderr, err), false
	}
	err := c.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(stdout)
		return exitOK, false
	}
	if err != nil {
		return c.usageError(stderr, err), false
	}
	return exitOK, true
}

// usageError prints err and the usage line to w and returns exitUsage.
func (c *command) usageError(w io.Writer, err error) int {
	fmt.Fprintf(w, "%s: %v\nusage: %s\nRun '%s -h' for the flags.\n", c.Name(), err, c.usage, c.Name())
	return exitUsage
}

func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n", c.usage)
	if c.about != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.about))
	}
	fmt.Fprintln(w, "flags (each also settable as AJWT_<FLAG>):")
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// envName is the environment variable that sets flag name: AJWT_ + upper case, dashes
// replaced by underscores.
func envName(flagName string) string {
	return "AJWT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag of fs whose AJWT_<FLAG> variable is present. Call it before
// fs.Parse so that the command line wins.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := lookup(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value in %s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// newLogger returns a slog logger writing to w in "text" or "json" format.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	default:
		return nil, fmt.Errorf("log format must be text or json, not %q", format)
	}
}
