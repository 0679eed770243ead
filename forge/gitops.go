package forge

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// fileEntry is one non-directory entry of a flattened tree.
type fileEntry struct {
	Hash plumbing.Hash
	Mode filemode.FileMode
}

// flatten lists every non-directory entry of t by its full path.
func flatten(t *object.Tree) (map[string]fileEntry, error) {
	out := make(map[string]fileEntry)
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("walk tree: %w", err)
		}
		if e.Mode == filemode.Dir {
			continue
		}
		out[name] = fileEntry{Hash: e.Hash, Mode: e.Mode}
	}
}

// errPathConflict reports a file where a directory is needed or vice versa.
var errPathConflict = errors.New("file and directory at the same path")

// writeTree stores the tree (and subtrees) holding files and returns its hash.
// Entries are sorted in git's canonical order, so unchanged subtrees keep
// their hashes.
func writeTree(st storer.EncodedObjectStorer, files map[string]fileEntry) (plumbing.Hash, error) {
	subs := make(map[string]map[string]fileEntry)
	var entries []object.TreeEntry
	for p, e := range files {
		if i := strings.IndexByte(p, '/'); i >= 0 {
			d := p[:i]
			if subs[d] == nil {
				subs[d] = make(map[string]fileEntry)
			}
			subs[d][p[i+1:]] = e
			continue
		}
		entries = append(entries, object.TreeEntry{Name: p, Mode: e.Mode, Hash: e.Hash})
	}
	for _, e := range entries {
		if _, ok := subs[e.Name]; ok {
			return plumbing.ZeroHash, fmt.Errorf("%s: %w", e.Name, errPathConflict)
		}
	}
	for d, m := range subs {
		h, err := writeTree(st, m)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: d, Mode: filemode.Dir, Hash: h})
	}
	sort.Slice(entries, func(i, j int) bool { return treeSortKey(entries[i]) < treeSortKey(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := st.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
	}
	return h, nil
}

// treeSortKey is git's tree order: directories compare as if suffixed by "/".
func treeSortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// writeBlob stores content as a blob.
func writeBlob(st storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("blob writer: %w", err)
	}
	if _, err := w.Write(content); err != nil {
		w.Close()
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("close blob: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

// writeCommit stores a commit object.
func writeCommit(st storer.EncodedObjectStorer, tree plumbing.Hash, parents []plumbing.Hash, msg string, author, committer object.Signature) (plumbing.Hash, error) {
	c := &object.Commit{Author: author, Committer: committer, Message: msg, TreeHash: tree, ParentHashes: parents}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store commit: %w", err)
	}
	return h, nil
}

// branchHead returns the commit a branch points at, or a 404 APIError.
func branchHead(r *git.Repository, branch string) (*object.Commit, error) {
	ref, err := r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("branch %s: %w", branch, err)
	}
	c, err := r.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("branch %s commit: %w", branch, err)
	}
	return c, nil
}

// resolveCommit resolves a branch name, tag name or full commit sha.
func resolveCommit(r *git.Repository, rev string) (*object.Commit, error) {
	for _, name := range []plumbing.ReferenceName{plumbing.NewBranchReferenceName(rev), plumbing.NewTagReferenceName(rev)} {
		if name.Validate() != nil {
			continue
		}
		ref, err := r.Reference(name, true)
		if err != nil {
			continue
		}
		if c, err := r.CommitObject(ref.Hash()); err == nil {
			return c, nil
		}
		if tag, err := r.TagObject(ref.Hash()); err == nil {
			if c, err := tag.Commit(); err == nil {
				return c, nil
			}
		}
	}
	if h, ok := fullHash(rev); ok {
		if c, err := r.CommitObject(h); err == nil {
			return c, nil
		}
	}
	return nil, errNotFound()
}

// fullHash parses a 40-hex object id.
func fullHash(s string) (plumbing.Hash, bool) {
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.NewHash(s), true
}

// lookupPath finds path in a flattened tree: a file entry, or whether it is a
// directory (some file lies below it).
func lookupPath(files map[string]fileEntry, path string) (fileEntry, bool, bool) {
	if e, ok := files[path]; ok {
		return e, true, false
	}
	prefix := path + "/"
	for p := range files {
		if strings.HasPrefix(p, prefix) {
			return fileEntry{}, false, true
		}
	}
	return fileEntry{}, false, false
}

// parentIsFile reports whether a proper prefix of path is a file.
func parentIsFile(files map[string]fileEntry, path string) bool {
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			if _, ok := files[path[:i]]; ok {
				return true
			}
		}
	}
	return false
}

// mergeTrees is a file-level three-way merge: a path changed on one side only
// takes that side; a path changed differently on both sides is a conflict.
func mergeTrees(baseOf, ours, theirs map[string]fileEntry) (map[string]fileEntry, error) {
	out := make(map[string]fileEntry, len(ours))
	for p, e := range ours {
		out[p] = e
	}
	paths := make(map[string]bool)
	for p := range baseOf {
		paths[p] = true
	}
	for p := range theirs {
		paths[p] = true
	}
	for p := range paths {
		b, inB := baseOf[p]
		t, inT := theirs[p]
		if inB == inT && b == t {
			continue // unchanged on their side
		}
		o, inO := ours[p]
		if inO != inB || o != b { // changed on our side too
			if inO == inT && o == t {
				continue // same change
			}
			return nil, fmt.Errorf("%s: %w", p, errMergeConflict)
		}
		if inT {
			out[p] = t
		} else {
			delete(out, p)
		}
	}
	return out, nil
}

var errMergeConflict = errors.New("merge conflict")
