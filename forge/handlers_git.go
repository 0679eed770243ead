package forge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/labstack/echo/v4"
)

// branchParam returns the branch named by the trailing wildcard.
func branchParam(c echo.Context) (string, error) {
	b, err := param(c, "*")
	if err != nil {
		return "", err
	}
	if b == "" || plumbing.NewBranchReferenceName(b).Validate() != nil {
		return "", errNotFound()
	}
	return b, nil
}

// getBranchRef serves GET /repos/{o}/{r}/git/ref/heads/{branch...}.
func (s *Server) getBranchRef(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	branch, err := branchParam(c)
	if err != nil {
		return err
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return errNotFound()
	}
	if err != nil {
		return fmt.Errorf("get ref %s: %w", branch, err)
	}
	return c.JSON(http.StatusOK, refView(baseURL(c), m, ref.Name().String(), ref.Hash().String()))
}

type createRefRequest struct {
	Ref string
	SHA string
}

func (q *createRefRequest) fields() map[string]any {
	return map[string]any{"ref": &q.Ref, "sha": &q.SHA}
}

// createRef serves POST /repos/{o}/{r}/git/refs {ref, sha}: a branch or a
// tag pointing at an existing commit.
func (s *Server) createRef(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	var q createRefRequest
	if err := decodeStrict(c.Request().Body, q.fields()); err != nil {
		return err
	}
	refName := plumbing.ReferenceName(q.Ref)
	if !(refName.IsBranch() || refName.IsTag()) || strings.Count(q.Ref, "/") < 2 || refName.Validate() != nil {
		return errUnprocessable("Reference name is invalid")
	}
	h, ok := fullHash(q.SHA)
	if !ok {
		return errUnprocessable("Object does not exist")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	if _, err := r.CommitObject(h); err != nil {
		return errUnprocessable("Object does not exist")
	}
	if _, err := r.Reference(refName, false); err == nil {
		return errUnprocessable("Reference already exists")
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(refName, h)); err != nil {
		return fmt.Errorf("create ref %s: %w", refName, err)
	}
	s.log.InfoContext(c.Request().Context(), "forge ref created", "repo", owner+"/"+name, "ref", q.Ref, "sha", q.SHA)
	return c.JSON(http.StatusCreated, refView(baseURL(c), m, q.Ref, q.SHA))
}

// deleteBranchRef serves DELETE /repos/{o}/{r}/git/refs/heads/{branch...}.
func (s *Server) deleteBranchRef(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	branch, err := branchParam(c)
	if err != nil {
		return errUnprocessable("Reference does not exist")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	if branch == m.DefaultBranch {
		return errUnprocessable("Cannot delete the default branch")
	}
	refName := plumbing.NewBranchReferenceName(branch)
	if _, err := r.Reference(refName, false); err != nil {
		return errUnprocessable("Reference does not exist")
	}
	if err := r.Storer.RemoveReference(refName); err != nil {
		return fmt.Errorf("delete ref %s: %w", refName, err)
	}
	s.log.InfoContext(c.Request().Context(), "forge ref deleted", "repo", owner+"/"+name, "ref", refName.String())
	return c.NoContent(http.StatusNoContent)
}

// getTree serves GET /repos/{o}/{r}/git/trees/{sha-or-branch}[?recursive=1].
func (s *Server) getTree(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	rev, err := param(c, "*")
	if err != nil {
		return err
	}
	recursive := c.QueryParam("recursive") != "" && c.QueryParam("recursive") != "0" && c.QueryParam("recursive") != "false"
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	var tree *object.Tree
	if h, ok := fullHash(rev); ok {
		if t, err := r.TreeObject(h); err == nil {
			tree = t
		}
	}
	if tree == nil {
		commit, err := resolveCommit(r, rev)
		if err != nil {
			return err
		}
		if tree, err = commit.Tree(); err != nil {
			return fmt.Errorf("tree of %s: %w", rev, err)
		}
	}
	base := baseURL(c) + "/repos/" + m.Owner + "/" + m.Name + "/git/"
	out := treeJSON{SHA: tree.Hash.String(), URL: base + "trees/" + tree.Hash.String(), Tree: []treeEntryJSON{}}
	add := func(path string, e object.TreeEntry) error {
		te := treeEntryJSON{Path: path, Mode: fmt.Sprintf("%06o", uint32(e.Mode)), SHA: e.Hash.String()}
		switch e.Mode {
		case filemode.Dir:
			te.Type, te.URL = "tree", base+"trees/"+e.Hash.String()
		case filemode.Submodule:
			te.Type = "commit"
		default:
			te.Type, te.URL = "blob", base+"blobs/"+e.Hash.String()
			size, err := r.Storer.EncodedObjectSize(e.Hash)
			if err != nil {
				return fmt.Errorf("blob size %s: %w", path, err)
			}
			te.Size = &size
		}
		out.Tree = append(out.Tree, te)
		return nil
	}
	if !recursive {
		for _, e := range tree.Entries {
			if err := add(e.Name, e); err != nil {
				return err
			}
		}
		return c.JSON(http.StatusOK, out)
	}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		p, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("walk tree %s: %w", rev, err)
		}
		if err := add(p, e); err != nil {
			return err
		}
	}
	sort.SliceStable(out.Tree, func(i, j int) bool { return out.Tree[i].Path < out.Tree[j].Path })
	return c.JSON(http.StatusOK, out)
}
