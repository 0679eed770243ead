package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/agentic-jwt/patchcrew/idp"
)

const auditVerifyAbout = `Walks the audit log of a database and checks its hash chain: every event's hash is
"sha256:" + hex(SHA-256(prev_hash + "\n" + JCS(event without hash))) and the sequence
numbers run 1, 2, 3, ... Exit status 1 names the first event that does not verify.`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintln(stdout, "usage: ajwt audit verify --db FILE")
			return exitOK
		}
		fmt.Fprintln(stderr, "usage: ajwt audit verify --db FILE")
		return exitUsage
	}
	c := newCommand("ajwt audit verify", "ajwt audit verify --db FILE", auditVerifyAbout)
	db := c.String("db", "ajwt.db", "SQLite database file")
	if code, ok := c.parse(args[1:], stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 {
		return c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args()))
	}
	// OpenSQLite creates a missing file; verifying a file that is not there is an error.
	if _, err := os.Stat(*db); err != nil {
		fmt.Fprintf(stderr, "ajwt audit verify: %v\n", err)
		return exitError
	}
	st, err := idp.OpenSQLite(ctx, *db)
	if err != nil {
		fmt.Fprintf(stderr, "ajwt audit verify: %v\n", err)
		return exitError
	}
	n, err := idp.VerifyAuditChain(ctx, st)
	if cerr := st.Close(); err == nil && cerr != nil {
		fmt.Fprintf(stderr, "ajwt audit verify: %v\n", cerr)
		return exitError
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit chain broken after %d good events: %v\n", n, err)
		return exitError
	}
	fmt.Fprintf(stdout, "audit chain ok: %d events\n", n)
	return exitOK
}
