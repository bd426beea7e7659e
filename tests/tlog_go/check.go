// Checks the ledger's checkpoint and proofs with golang.org/x/mod/sumdb/tlog and .../note.
//
//	go run check.go < checks.json
//
// The input names the verifier key, the signed checkpoint note, its leaf hashes' inclusion
// proofs and consistency proofs from smaller trees to it (hashes in base64). It prints "ok"
// and exits 0 when every signature and proof verifies, else says what failed and exits 1.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index  int64    `json:"index"`
	Leaf   string   `json:"leaf"`
	Hashes []string `json:"hashes"`
}

type consistency struct {
	Size   int64    `json:"size"`
	Root   string   `json:"root"`
	Hashes []string `json:"hashes"`
}

type checks struct {
	Vkey        string        `json:"vkey"`
	Checkpoint  string        `json:"checkpoint"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

func hash(text string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		fail("not a base64 SHA-256 hash: %q", text)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func hashes(texts []string) []tlog.Hash {
	out := make([]tlog.Hash, len(texts))
	for i, text := range texts {
		out[i] = hash(text)
	}
	return out
}

func fail(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

// signedTree opens the checkpoint note with the verifier key and reads its size and root.
func signedTree(vkey, checkpoint string) (int64, tlog.Hash) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	opened, err := note.Open([]byte(checkpoint), note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(opened.Text, "\n")
	if len(lines) < 3 {
		fail("checkpoint text: %q", opened.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	return size, hash(lines[2])
}

func main() {
	var in checks
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("input: %v", err)
	}
	size, root := signedTree(in.Vkey, in.Checkpoint)
	for _, p := range in.Inclusion {
		if err := tlog.CheckRecord(hashes(p.Hashes), size, root, p.Index, hash(p.Leaf)); err != nil {
			fail("inclusion of leaf %d in %d: %v", p.Index, size, err)
		}
	}
	for _, p := range in.Consistency {
		if err := tlog.CheckTree(hashes(p.Hashes), size, root, p.Size, hash(p.Root)); err != nil {
			fail("consistency of %d with %d: %v", p.Size, size, err)
		}
	}
	fmt.Println("ok")
}
