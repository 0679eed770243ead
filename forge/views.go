package forge

import (
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// GitHub-shaped response bodies (the subset go-github and our agents read).

type userJSON struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
	URL   string `json:"url"`
}

type repoJSON struct {
	ID            int64     `json:"id"`
	NodeID        string    `json:"node_id"`
	Name          string    `json:"name"`
	FullName      string    `json:"full_name"`
	Owner         userJSON  `json:"owner"`
	Private       bool      `json:"private"`
	DefaultBranch string    `json:"default_branch"`
	URL           string    `json:"url"`
	HTMLURL       string    `json:"html_url"`
	CloneURL      string    `json:"clone_url"`
	CreatedAt     time.Time `json:"created_at"`
	Visibility    string    `json:"visibility"`
}

func (s *Server) repoView(base string, m *repoMeta) repoJSON {
	return repoJSON{
		ID:            m.ID,
		NodeID:        fmt.Sprintf("R_%d", m.ID),
		Name:          m.Name,
		FullName:      m.Owner + "/" + m.Name,
		Owner:         userJSON{Login: m.Owner, ID: 1, Type: "Organization", URL: base + "/users/" + m.Owner},
		DefaultBranch: m.DefaultBranch,
		URL:           base + "/repos/" + m.Owner + "/" + m.Name,
		HTMLURL:       base + "/" + m.Owner + "/" + m.Name,
		CloneURL:      base + "/" + m.Owner + "/" + m.Name + ".git",
		CreatedAt:     m.CreatedAt,
		Visibility:    "public",
	}
}

type refObjectJSON struct {
	Type string `json:"type"`
	SHA  string `json:"sha"`
	URL  string `json:"url"`
}

type refJSON struct {
	Ref    string        `json:"ref"`
	NodeID string        `json:"node_id"`
	URL    string        `json:"url"`
	Object refObjectJSON `json:"object"`
}

func refView(base string, m *repoMeta, ref, sha string) refJSON {
	repoURL := base + "/repos/" + m.Owner + "/" + m.Name
	return refJSON{Ref: ref, NodeID: "REF_" + sha[:12], URL: repoURL + "/git/" + ref,
		Object: refObjectJSON{Type: "commit", SHA: sha, URL: repoURL + "/git/commits/" + sha}}
}

type signatureJSON struct {
	Name  string    `json:"name"`
	Email string    `json:"email"`
	Date  time.Time `json:"date"`
}

type shaJSON struct {
	SHA string `json:"sha"`
	URL string `json:"url,omitempty"`
}

type commitJSON struct {
	SHA       string        `json:"sha"`
	NodeID    string        `json:"node_id"`
	URL       string        `json:"url"`
	HTMLURL   string        `json:"html_url"`
	Author    signatureJSON `json:"author"`
	Committer signatureJSON `json:"committer"`
	Message   string        `json:"message"`
	Tree      shaJSON       `json:"tree"`
	Parents   []shaJSON     `json:"parents"`
}

func commitView(base string, m *repoMeta, c *object.Commit) commitJSON {
	repoURL := base + "/repos/" + m.Owner + "/" + m.Name
	parents := make([]shaJSON, 0, len(c.ParentHashes))
	for _, p := range c.ParentHashes {
		parents = append(parents, shaJSON{SHA: p.String(), URL: repoURL + "/git/commits/" + p.String()})
	}
	return commitJSON{
		SHA:       c.Hash.String(),
		NodeID:    "C_" + c.Hash.String()[:12],
		URL:       repoURL + "/git/commits/" + c.Hash.String(),
		HTMLURL:   base + "/" + m.Owner + "/" + m.Name + "/commit/" + c.Hash.String(),
		Author:    signatureJSON{Name: c.Author.Name, Email: c.Author.Email, Date: c.Author.When.UTC()},
		Committer: signatureJSON{Name: c.Committer.Name, Email: c.Committer.Email, Date: c.Committer.When.UTC()},
		Message:   c.Message,
		Tree:      shaJSON{SHA: c.TreeHash.String(), URL: repoURL + "/git/trees/" + c.TreeHash.String()},
		Parents:   parents,
	}
}

type treeEntryJSON struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
	Type string `json:"type"`
	SHA  string `json:"sha"`
	Size *int64 `json:"size,omitempty"`
	URL  string `json:"url"`
}

type treeJSON struct {
	SHA       string          `json:"sha"`
	URL       string          `json:"url"`
	Tree      []treeEntryJSON `json:"tree"`
	Truncated bool            `json:"truncated"`
}

type contentLinksJSON struct {
	Self string `json:"self"`
	Git  string `json:"git"`
	HTML string `json:"html"`
}

type contentJSON struct {
	Type        string           `json:"type"`
	Encoding    string           `json:"encoding,omitempty"`
	Size        int64            `json:"size"`
	Name        string           `json:"name"`
	Path        string           `json:"path"`
	Content     *string          `json:"content,omitempty"`
	SHA         string           `json:"sha"`
	URL         string           `json:"url"`
	GitURL      string           `json:"git_url"`
	HTMLURL     string           `json:"html_url"`
	DownloadURL *string          `json:"download_url"`
	Links       contentLinksJSON `json:"_links"`
}

type branchJSON struct {
	Label string   `json:"label"`
	Ref   string   `json:"ref"`
	SHA   string   `json:"sha"`
	User  userJSON `json:"user"`
	Repo  repoJSON `json:"repo"`
}

type pullJSON struct {
	ID             int64      `json:"id"`
	NodeID         string     `json:"node_id"`
	Number         int        `json:"number"`
	State          string     `json:"state"`
	Title          string     `json:"title"`
	Body           string     `json:"body"`
	Draft          bool       `json:"draft"`
	Merged         bool       `json:"merged"`
	MergeCommitSHA *string    `json:"merge_commit_sha"`
	URL            string     `json:"url"`
	HTMLURL        string     `json:"html_url"`
	User           userJSON   `json:"user"`
	Head           branchJSON `json:"head"`
	Base           branchJSON `json:"base"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	MergedAt       *time.Time `json:"merged_at"`
	ClosedAt       *time.Time `json:"closed_at"`
}
