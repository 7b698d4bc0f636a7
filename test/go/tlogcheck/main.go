// tlogcheck checks the ledger's C2SP checkpoint notes and proofs with stock implementations:
// golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog (RFC 6962 trees), so
// the tests do not only trust the project's own code. Built by scripts/build-go-tools.sh.
//
//	tlogcheck note <vkey> <note-file>                      prints "origin size base64-root"
//	tlogcheck proof <vkey> <tlog-proof-file>               c2sp.org/tlog-proof; the leaf is RecordHash(extra)
//	tlogcheck consistency <vkey> <old-note-file> <file>    a tlog-witness add-checkpoint body against the old note
//
// Exits 1 with the reason when a check fails, 2 on bad usage.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck note|proof <vkey> <file> | consistency <vkey> <old-note> <file>")
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	verifiers := note.VerifierList(verifier)
	switch os.Args[1] {
	case "note":
		c := openCheckpoint(readFile(os.Args[3]), verifiers)
		fmt.Printf("%s %d %s\n", c.origin, c.tree.N, c.tree.Hash)
	case "proof":
		checkProof(readFile(os.Args[3]), verifiers)
	case "consistency":
		if len(os.Args) != 5 {
			fail("consistency needs <old-note-file> <file>")
		}
		checkConsistency(openCheckpoint(readFile(os.Args[3]), verifiers), readFile(os.Args[4]), verifiers)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func readFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return b
}

// openCheckpoint verifies the note's signature with note.Open and parses the
// c2sp.org/tlog-checkpoint body (origin, tree size, base64 root).
func openCheckpoint(msg []byte, verifiers note.Verifiers) checkpoint {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("checkpoint body has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad tree size %q", lines[1])
	}
	hash, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("bad root hash %q", lines[2])
	}
	if n.Sigs[0].Name != lines[0] {
		fail("key name %q is not the origin %q", n.Sigs[0].Name, lines[0])
	}
	return checkpoint{lines[0], tlog.Tree{N: size, Hash: hash}}
}

func hashLines(lines []string) []tlog.Hash {
	out := make([]tlog.Hash, 0, len(lines))
	for _, l := range lines {
		h, err := tlog.ParseHash(l)
		if err != nil {
			fail("bad proof hash %q", l)
		}
		out = append(out, h)
	}
	return out
}

func checkProof(data []byte, verifiers note.Verifiers) {
	head, noteBytes, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		fail("tlog-proof: no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail("tlog-proof: bad header %q", lines[0])
	}
	lines = lines[1:]
	var extra []byte
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		var err error
		if extra, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "extra ")); err != nil {
			fail("tlog-proof: bad extra: %v", err)
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		fail("tlog-proof: no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "index "), 10, 64)
	if err != nil || index < 0 {
		fail("tlog-proof: bad index %q", lines[0])
	}
	if extra == nil {
		fail("tlog-proof: no extra line carrying the entry")
	}
	c := openCheckpoint(noteBytes, verifiers)
	if err := tlog.CheckRecord(tlog.RecordProof(hashLines(lines[1:])), c.tree.N, c.tree.Hash, index, tlog.RecordHash(extra)); err != nil {
		fail("tlog.CheckRecord: %v", err)
	}
	fmt.Printf("OK record %d is in %s at size %d\n", index, c.origin, c.tree.N)
}

func checkConsistency(old checkpoint, data []byte, verifiers note.Verifiers) {
	head, noteBytes, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		fail("add-checkpoint: no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	oldSize, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "old "), 10, 64)
	if err != nil || !strings.HasPrefix(lines[0], "old ") {
		fail("add-checkpoint: bad first line %q", lines[0])
	}
	if oldSize != old.tree.N {
		fail("add-checkpoint: old %d is not the old note's size %d", oldSize, old.tree.N)
	}
	c := openCheckpoint(noteBytes, verifiers)
	if c.origin != old.origin {
		fail("origins differ: %q, %q", old.origin, c.origin)
	}
	if err := tlog.CheckTree(tlog.TreeProof(hashLines(lines[1:])), c.tree.N, c.tree.Hash, old.tree.N, old.tree.Hash); err != nil {
		fail("tlog.CheckTree: the tree of size %d does not extend the tree of size %d: %v", c.tree.N, old.tree.N, err)
	}
	fmt.Printf("OK %s at size %d extends size %d\n", c.origin, c.tree.N, old.tree.N)
}
