package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

const shimChecksumAbout = `Prints the shim checksum of this binary: "sha256:" + hex(SHA-256(own executable)).
An admin allows a build with 'ajwt register shim --checksum <it>'. The checksum is what a
build declares, not an attestation of it.`

func runShimChecksum(_ context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ajwt shim-checksum", "ajwt shim-checksum", shimChecksumAbout)
	if code, ok := c.parse(args, stdout, stderr); !ok {
		return code
	}
	if c.NArg() > 0 {
		return c.usageError(stderr, fmt.Errorf("unexpected arguments %q", c.Args()))
	}
	sum, err := shimChecksum()
	if err != nil {
		fmt.Fprintf(stderr, "ajwt shim-checksum: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, sum)
	return exitOK
}

// shimChecksum hashes the running executable.
func shimChecksum() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
