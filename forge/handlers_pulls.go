package forge

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/labstack/echo/v4"
)

type createPullRequest struct {
	Title               string
	Head                string
	Base                string
	Body                string
	Draft               bool
	MaintainerCanModify bool
}

func (q *createPullRequest) fields() map[string]any {
	return map[string]any{"title": &q.Title, "head": &q.Head, "base": &q.Base, "body": &q.Body,
		"draft": &q.Draft, "maintainer_can_modify": &q.MaintainerCanModify}
}

// createPull serves POST /repos/{o}/{r}/pulls {title, head, base, body}.
// head is "branch" or "owner:branch" with owner the repository's owner
// (no forks here).
func (s *Server) createPull(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	var q createPullRequest
	if err := decodeStrict(c.Request().Body, q.fields()); err != nil {
		return err
	}
	if q.Title == "" || q.Head == "" || q.Base == "" {
		return errUnprocessable("Validation Failed: title, head and base are required")
	}
	head := q.Head
	if o, b, ok := strings.Cut(q.Head, ":"); ok {
		if o != owner {
			return errUnprocessable("Validation Failed: head must be a branch of this repository")
		}
		head = b
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	if head == q.Base {
		return errUnprocessable("Validation Failed: head and base must be different branches")
	}
	headCommit, err := branchHead(r, head)
	if err != nil {
		return errUnprocessable("Validation Failed: head does not exist")
	}
	baseCommit, err := branchHead(r, q.Base)
	if err != nil {
		return errUnprocessable("Validation Failed: base does not exist")
	}
	if contained, err := headCommit.IsAncestor(baseCommit); err != nil {
		return fmt.Errorf("compare %s..%s: %w", q.Base, head, err)
	} else if contained || headCommit.Hash == baseCommit.Hash {
		return errUnprocessable(fmt.Sprintf("Validation Failed: No commits between %s and %s", q.Base, head))
	}
	for _, p := range m.Pulls {
		if p.State == "open" && p.Head == head && p.Base == q.Base {
			return errUnprocessable(fmt.Sprintf("Validation Failed: A pull request already exists for %s:%s.", owner, head))
		}
	}
	now := s.now().UTC()
	pm := pullMeta{Number: m.NextPull, Title: q.Title, Body: q.Body, Head: head, Base: q.Base,
		State: "open", Draft: q.Draft, CreatedAt: now, UpdatedAt: now}
	m.NextPull++
	m.Pulls = append(m.Pulls, pm)
	if err := s.store.writeMeta(m); err != nil {
		return err
	}
	s.log.InfoContext(c.Request().Context(), "forge pull request opened", "repo", owner+"/"+name,
		"number", pm.Number, "head", head, "base", q.Base)
	return c.JSON(http.StatusCreated, s.pullView(baseURL(c), r, m, pm))
}

// listPulls serves GET /repos/{o}/{r}/pulls[?state=open|closed|all&head=&base=].
func (s *Server) listPulls(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		return errUnprocessable("Validation Failed: state must be open, closed or all")
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	head := strings.TrimPrefix(c.QueryParam("head"), owner+":")
	base := c.QueryParam("base")
	out := []pullJSON{}
	for i := len(m.Pulls) - 1; i >= 0; i-- { // newest first, as GitHub's default sort
		p := m.Pulls[i]
		if (state != "all" && p.State != state) || (head != "" && p.Head != head) || (base != "" && p.Base != base) {
			continue
		}
		out = append(out, s.pullView(baseURL(c), r, m, p))
	}
	return c.JSON(http.StatusOK, out)
}

// getPull serves GET /repos/{o}/{r}/pulls/{n}.
func (s *Server) getPull(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	i, err := findPull(c, m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.pullView(baseURL(c), r, m, m.Pulls[i]))
}

func findPull(c echo.Context, m *repoMeta) (int, error) {
	n, err := strconv.Atoi(c.Param("number"))
	if err != nil || n <= 0 {
		return 0, errNotFound()
	}
	for i, p := range m.Pulls {
		if p.Number == n {
			return i, nil
		}
	}
	return 0, errNotFound()
}

type mergePullRequest struct {
	CommitTitle   string
	CommitMessage string
	SHA           string
	MergeMethod   string
}

func (q *mergePullRequest) fields() map[string]any {
	return map[string]any{"commit_title": &q.CommitTitle, "commit_message": &q.CommitMessage,
		"sha": &q.SHA, "merge_method": &q.MergeMethod}
}

type mergeResultJSON struct {
	SHA     string `json:"sha"`
	Merged  bool   `json:"merged"`
	Message string `json:"message"`
}

// mergePull serves PUT /repos/{o}/{r}/pulls/{n}/merge: merge_method "merge"
// (default) writes a real merge commit on base with parents (base, head);
// "squash" writes one commit with the merged tree and base as parent.
// A file changed on both sides is a conflict (405, as GitHub answers for an
// unmergeable pull request); a stale "sha" is 409.
func (s *Server) mergePull(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	var q mergePullRequest
	if c.Request().ContentLength != 0 {
		if err := decodeStrict(c.Request().Body, q.fields()); err != nil {
			return err
		}
	}
	if q.MergeMethod == "" {
		q.MergeMethod = "merge"
	}
	if q.MergeMethod != "merge" && q.MergeMethod != "squash" {
		return errUnprocessable("Validation Failed: merge_method must be merge or squash")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	i, err := findPull(c, m)
	if err != nil {
		return err
	}
	pm := m.Pulls[i]
	if pm.State != "open" {
		return errNotMergeable("Pull Request is not mergeable")
	}
	headC, err := branchHead(r, pm.Head)
	if err != nil {
		return errNotMergeable("Pull Request is not mergeable")
	}
	baseC, err := branchHead(r, pm.Base)
	if err != nil {
		return errNotMergeable("Pull Request is not mergeable")
	}
	if q.SHA != "" && q.SHA != headC.Hash.String() {
		return errConflict("Head branch was modified. Review and try the merge again.")
	}
	bases, err := headC.MergeBase(baseC)
	if err != nil {
		return fmt.Errorf("merge base: %w", err)
	}
	if len(bases) == 0 {
		return errNotMergeable("Pull Request is not mergeable")
	}
	mbTree, err := bases[0].Tree()
	if err != nil {
		return fmt.Errorf("merge base tree: %w", err)
	}
	mb, err := flatten(mbTree)
	if err != nil {
		return err
	}
	baseTree, err := baseC.Tree()
	if err != nil {
		return fmt.Errorf("base tree: %w", err)
	}
	ours, err := flatten(baseTree)
	if err != nil {
		return err
	}
	headTree, err := headC.Tree()
	if err != nil {
		return fmt.Errorf("head tree: %w", err)
	}
	theirs, err := flatten(headTree)
	if err != nil {
		return err
	}
	merged, err := mergeTrees(mb, ours, theirs)
	if errors.Is(err, errMergeConflict) {
		return errNotMergeable("Pull Request is not mergeable")
	}
	if err != nil {
		return err
	}
	treeHash, err := writeTree(r.Storer, merged)
	if errors.Is(err, errPathConflict) {
		return errNotMergeable("Pull Request is not mergeable")
	}
	if err != nil {
		return err
	}
	title := q.CommitTitle
	msg := ""
	parents := []plumbing.Hash{baseC.Hash, headC.Hash}
	if q.MergeMethod == "squash" {
		parents = parents[:1]
		if title == "" {
			title = fmt.Sprintf("%s (#%d)", pm.Title, pm.Number)
		}
	} else if title == "" {
		title = fmt.Sprintf("Merge pull request #%d from %s/%s", pm.Number, owner, pm.Head)
		msg = pm.Title
	}
	if q.CommitMessage != "" {
		msg = q.CommitMessage
	}
	full := title + "\n"
	if msg != "" {
		full += "\n" + msg + "\n"
	}
	sig := s.signature(personRequest{})
	commitHash, err := writeCommit(r.Storer, treeHash, parents, full, sig, sig)
	if err != nil {
		return err
	}
	refName := plumbing.NewBranchReferenceName(pm.Base)
	if err := r.Storer.CheckAndSetReference(plumbing.NewHashReference(refName, commitHash),
		plumbing.NewHashReference(refName, baseC.Hash)); err != nil {
		return errConflict("Base branch was modified. Review and try the merge again.")
	}
	now := s.now().UTC()
	pm.State, pm.Merged, pm.MergeCommitSHA = "closed", true, commitHash.String()
	pm.HeadSHA, pm.BaseSHA = headC.Hash.String(), commitHash.String()
	pm.MergedAt, pm.ClosedAt, pm.UpdatedAt = &now, &now, now
	m.Pulls[i] = pm
	if err := s.store.writeMeta(m); err != nil {
		return err
	}
	s.log.InfoContext(c.Request().Context(), "forge pull request merged", "repo", owner+"/"+name,
		"number", pm.Number, "commit", commitHash.String())
	return c.JSON(http.StatusOK, mergeResultJSON{SHA: commitHash.String(), Merged: true, Message: "Pull Request successfully merged"})
}

// pullView renders a pull request; an open one shows its branches' live heads.
func (s *Server) pullView(base string, r *git.Repository, m *repoMeta, p pullMeta) pullJSON {
	headSHA, baseSHA := p.HeadSHA, p.BaseSHA
	if p.State == "open" {
		if c, err := branchHead(r, p.Head); err == nil {
			headSHA = c.Hash.String()
		}
		if c, err := branchHead(r, p.Base); err == nil {
			baseSHA = c.Hash.String()
		}
	}
	repo := s.repoView(base, m)
	var mcs *string
	if p.MergeCommitSHA != "" {
		v := p.MergeCommitSHA
		mcs = &v
	}
	id := m.ID*1_000_000 + int64(p.Number)
	return pullJSON{
		ID: id, NodeID: "PR_" + strconv.FormatInt(id, 10), Number: p.Number, State: p.State,
		Title: p.Title, Body: p.Body, Draft: p.Draft, Merged: p.Merged, MergeCommitSHA: mcs,
		URL:       repo.URL + "/pulls/" + strconv.Itoa(p.Number),
		HTMLURL:   repo.HTMLURL + "/pull/" + strconv.Itoa(p.Number),
		User:      repo.Owner,
		Head:      branchJSON{Label: m.Owner + ":" + p.Head, Ref: p.Head, SHA: headSHA, User: repo.Owner, Repo: repo},
		Base:      branchJSON{Label: m.Owner + ":" + p.Base, Ref: p.Base, SHA: baseSHA, User: repo.Owner, Repo: repo},
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, MergedAt: p.MergedAt, ClosedAt: p.ClosedAt,
	}
}
