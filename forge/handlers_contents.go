package forge

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/labstack/echo/v4"
)

// maxContentBytes bounds a file returned inline by the contents API.
const maxContentBytes = 1 << 20

// contentsPathParam returns the checked content path of the request; the
// empty path (repository root) only when allowRoot.
func contentsPathParam(c echo.Context, allowRoot bool) (string, error) {
	p, err := param(c, "*")
	if err != nil {
		return "", err
	}
	if p == "" && allowRoot {
		return "", nil
	}
	if _, err := CheckContentsPath(p); err != nil {
		return "", errUnprocessable("Invalid request.\n\npath is invalid.")
	}
	return p, nil
}

// getContents serves GET /repos/{o}/{r}/contents/{path...}[?ref=]: a file
// (base64) or a directory listing.
func (s *Server) getContents(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	p, err := contentsPathParam(c, true)
	if err != nil {
		return err
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	rev := c.QueryParam("ref")
	if rev == "" {
		rev = m.DefaultBranch
	}
	commit, err := resolveCommit(r, rev)
	if err != nil {
		return errNotFound() // GitHub: "No commit found for the ref ..." is also 404
	}
	tree, err := commit.Tree()
	if err != nil {
		return fmt.Errorf("tree of %s: %w", rev, err)
	}
	cv := contentsViewer{base: baseURL(c), m: m, rev: rev}
	if p == "" {
		return c.JSON(http.StatusOK, cv.dir(r.Storer, "", tree))
	}
	entry, err := tree.FindEntry(p)
	if err != nil {
		return errNotFound()
	}
	if entry.Mode == filemode.Dir {
		sub, err := r.TreeObject(entry.Hash)
		if err != nil {
			return fmt.Errorf("tree %s: %w", p, err)
		}
		return c.JSON(http.StatusOK, cv.dir(r.Storer, p, sub))
	}
	if entry.Mode == filemode.Submodule {
		return errNotFound()
	}
	blob, err := r.BlobObject(entry.Hash)
	if err != nil {
		return fmt.Errorf("blob %s: %w", p, err)
	}
	if blob.Size > maxContentBytes {
		return errUnprocessable("This API returns blobs up to 1 MB in size.")
	}
	rd, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("blob %s: %w", p, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return fmt.Errorf("read blob %s: %w", p, err)
	}
	v := cv.file(p, entry.Hash, blob.Size)
	if entry.Mode == filemode.Symlink {
		v.Type = "symlink"
	}
	enc := base64Lines(data)
	v.Content, v.Encoding = &enc, "base64"
	return c.JSON(http.StatusOK, v)
}

// base64Lines encodes as GitHub does: standard base64 in 60-column lines.
func base64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(s) > 60 {
		sb.WriteString(s[:60])
		sb.WriteByte('\n')
		s = s[60:]
	}
	sb.WriteString(s)
	if sb.Len() > 0 {
		sb.WriteByte('\n')
	}
	return sb.String()
}

type contentsViewer struct {
	base string
	m    *repoMeta
	rev  string
}

func (v contentsViewer) file(p string, h plumbing.Hash, size int64) contentJSON {
	repoURL := v.base + "/repos/" + v.m.Owner + "/" + v.m.Name
	self := repoURL + "/contents/" + (&url.URL{Path: p}).EscapedPath() + "?ref=" + url.QueryEscape(v.rev)
	html := v.base + "/" + v.m.Owner + "/" + v.m.Name + "/blob/" + v.rev + "/" + p
	dl := v.base + "/" + v.m.Owner + "/" + v.m.Name + "/raw/" + v.rev + "/" + p
	gitURL := repoURL + "/git/blobs/" + h.String()
	return contentJSON{Type: "file", Size: size, Name: path.Base(p), Path: p, SHA: h.String(),
		URL: self, GitURL: gitURL, HTMLURL: html, DownloadURL: &dl,
		Links: contentLinksJSON{Self: self, Git: gitURL, HTML: html}}
}

func (v contentsViewer) dir(st interface {
	EncodedObjectSize(plumbing.Hash) (int64, error)
}, dir string, t *object.Tree) []contentJSON {
	out := make([]contentJSON, 0, len(t.Entries))
	for _, e := range t.Entries {
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		var size int64
		if e.Mode.IsFile() {
			size, _ = st.EncodedObjectSize(e.Hash)
		}
		item := v.file(p, e.Hash, size)
		switch e.Mode {
		case filemode.Dir:
			item.Type, item.DownloadURL, item.Size = "dir", nil, 0
			item.GitURL = strings.Replace(item.GitURL, "/git/blobs/", "/git/trees/", 1)
			item.Links.Git = item.GitURL
		case filemode.Symlink:
			item.Type = "symlink"
		case filemode.Submodule:
			item.Type, item.DownloadURL = "submodule", nil
		}
		out = append(out, item)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// personRequest is the optional author/committer of a contents PUT.
type personRequest struct {
	Name  string
	Email string
	Date  string
}

func (q *personRequest) fields() map[string]any {
	return map[string]any{"name": &q.Name, "email": &q.Email, "date": &q.Date}
}

type putContentsRequest struct {
	Message   string
	Content   *string
	SHA       string
	Branch    string
	Author    personRequest
	Committer personRequest
}

func (q *putContentsRequest) fields() map[string]any {
	return map[string]any{"message": &q.Message, "content": &q.Content, "sha": &q.SHA,
		"branch": &q.Branch, "author": &q.Author, "committer": &q.Committer}
}

type putContentsResponse struct {
	Content contentJSON `json:"content"`
	Commit  commitJSON  `json:"commit"`
}

// putContents serves PUT /repos/{o}/{r}/contents/{path...}: a real commit on
// the branch (the default branch when "branch" is absent, as GitHub does),
// whose parent is the branch head. "sha" is required when the file exists and
// must be its blob sha (409 otherwise).
func (s *Server) putContents(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	p, err := contentsPathParam(c, false)
	if err != nil {
		return err
	}
	var q putContentsRequest
	if err := decodeStrict(c.Request().Body, q.fields()); err != nil {
		return err
	}
	if q.Message == "" {
		return errUnprocessable("Invalid request.\n\n\"message\" wasn't supplied.")
	}
	if q.Content == nil {
		return errUnprocessable("Invalid request.\n\n\"content\" wasn't supplied.")
	}
	content, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(*q.Content))
	if err != nil {
		return errUnprocessable("content is not valid Base64")
	}
	for _, pr := range []personRequest{q.Author, q.Committer} {
		if strings.ContainsAny(pr.Name+pr.Email, "<>\n\r\x00") {
			return errUnprocessable("Invalid request.\n\nauthor or committer is invalid.")
		}
	}
	author, committer := s.signature(q.Author), s.signature(q.Committer)
	if q.Committer.Name == "" && q.Author.Name != "" {
		committer = author
	}
	if q.Author.Name == "" {
		author = committer
	}

	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	branch := q.Branch
	if branch == "" {
		branch = m.DefaultBranch
	}
	if plumbing.NewBranchReferenceName(branch).Validate() != nil {
		return errNotFound()
	}
	refName := plumbing.NewBranchReferenceName(branch)
	oldRef, err := r.Reference(refName, true)
	if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return fmt.Errorf("branch %s: %w", branch, err)
	}
	files := map[string]fileEntry{}
	var parents []plumbing.Hash
	switch {
	case oldRef != nil:
		head, err := r.CommitObject(oldRef.Hash())
		if err != nil {
			return fmt.Errorf("branch %s commit: %w", branch, err)
		}
		tree, err := head.Tree()
		if err != nil {
			return fmt.Errorf("branch %s tree: %w", branch, err)
		}
		if files, err = flatten(tree); err != nil {
			return err
		}
		parents = []plumbing.Hash{head.Hash}
	case branch != m.DefaultBranch:
		return errNotFound() // GitHub: "Branch x not found"
	default:
		// empty repository: the first commit creates the default branch
	}
	existing, exists, isDir := lookupPath(files, p)
	if isDir || parentIsFile(files, p) {
		return errUnprocessable("Invalid request.\n\npath conflicts with an existing file or directory.")
	}
	switch {
	case exists && q.SHA == "":
		return errUnprocessable("Invalid request.\n\n\"sha\" wasn't supplied.")
	case exists && q.SHA != existing.Hash.String():
		return errConflict(fmt.Sprintf("%s does not match %s", p, q.SHA))
	case !exists && q.SHA != "":
		return errConflict(fmt.Sprintf("%s does not match %s", p, q.SHA))
	}
	blob, err := writeBlob(r.Storer, content)
	if err != nil {
		return err
	}
	mode := filemode.Regular
	if exists && existing.Mode == filemode.Executable {
		mode = filemode.Executable
	}
	files[p] = fileEntry{Hash: blob, Mode: mode}
	treeHash, err := writeTree(r.Storer, files)
	if err != nil {
		return errUnprocessable("Invalid request.\n\npath conflicts with an existing file or directory.")
	}
	commitHash, err := writeCommit(r.Storer, treeHash, parents, q.Message, author, committer)
	if err != nil {
		return err
	}
	// Compare-and-swap on the ref as well as the store lock: a writer outside
	// this process (git push into the data dir) cannot be silently overwritten.
	if err := r.Storer.CheckAndSetReference(plumbing.NewHashReference(refName, commitHash), oldRef); err != nil {
		return errConflict(fmt.Sprintf("%s was modified concurrently", branch))
	}
	commit, err := r.CommitObject(commitHash)
	if err != nil {
		return fmt.Errorf("read back commit: %w", err)
	}
	s.log.InfoContext(c.Request().Context(), "forge commit", "repo", owner+"/"+name, "branch", branch,
		"path", p, "commit", commitHash.String())
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	cv := contentsViewer{base: baseURL(c), m: m, rev: branch}
	return c.JSON(status, putContentsResponse{
		Content: cv.file(p, blob, int64(len(content))),
		Commit:  commitView(baseURL(c), m, commit),
	})
}

// signature builds a commit signature, defaulting to the forge identity.
func (s *Server) signature(p personRequest) object.Signature {
	sig := object.Signature{Name: defaultName, Email: defaultEmail, When: s.now()}
	if p.Name != "" {
		sig.Name = p.Name
	}
	if p.Email != "" {
		sig.Email = p.Email
	}
	return sig
}

const (
	defaultName  = "ajwt forge"
	defaultEmail = "forge@localhost"
)
