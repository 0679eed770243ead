package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// repoMeta is the per-repository JSON file beside the bare repository.
type repoMeta struct {
	ID            int64      `json:"id"`
	Owner         string     `json:"owner"`
	Name          string     `json:"name"`
	DefaultBranch string     `json:"default_branch"`
	CreatedAt     time.Time  `json:"created_at"`
	NextPull      int        `json:"next_pull"`
	Pulls         []pullMeta `json:"pulls"`
}

// pullMeta is one pull request as persisted.
type pullMeta struct {
	Number         int        `json:"number"`
	Title          string     `json:"title"`
	Body           string     `json:"body"`
	Head           string     `json:"head"`
	Base           string     `json:"base"`
	State          string     `json:"state"`
	Draft          bool       `json:"draft"`
	Merged         bool       `json:"merged"`
	HeadSHA        string     `json:"head_sha,omitempty"`
	BaseSHA        string     `json:"base_sha,omitempty"`
	MergeCommitSHA string     `json:"merge_commit_sha,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	MergedAt       *time.Time `json:"merged_at,omitempty"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
}

// store owns the data directory. One RWMutex serialises writers (ref
// updates, metadata files, id allocation); readers share it.
type store struct {
	dir string
	mu  sync.RWMutex
	now func() time.Time
}

func newStore(dir string, now func() time.Time) (*store, error) {
	if dir == "" {
		return nil, errors.New("forge: DataDir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("forge: data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("forge: create data dir: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &store{dir: abs, now: now}, nil
}

func (s *store) repoDir(owner, name string) string {
	return filepath.Join(s.dir, owner, name+".git")
}

func (s *store) metaPath(owner, name string) string {
	return filepath.Join(s.dir, owner, name+".json")
}

// open returns the repository and its metadata, or a 404 APIError.
// The caller holds s.mu.
func (s *store) open(owner, name string) (*git.Repository, *repoMeta, error) {
	if !validRepoName(owner, name) {
		return nil, nil, errNotFound()
	}
	meta, err := s.readMeta(owner, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := git.PlainOpen(s.repoDir(owner, name))
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, nil, errNotFound()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s/%s: %w", owner, name, err)
	}
	return r, meta, nil
}

func (s *store) readMeta(owner, name string) (*repoMeta, error) {
	b, err := os.ReadFile(s.metaPath(owner, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata %s/%s: %w", owner, name, err)
	}
	var m repoMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode metadata %s/%s: %w", owner, name, err)
	}
	return &m, nil
}

// writeMeta writes the metadata file atomically (temp file + fsync + rename).
// The caller holds s.mu for writing.
func (s *store) writeMeta(m *repoMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	dst := s.metaPath(m.Owner, m.Name)
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".meta-*.tmp")
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync metadata: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close metadata: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("rename metadata: %w", err)
	}
	return nil
}

// allMeta lists the metadata of every repository. The caller holds s.mu.
func (s *store) allMeta() ([]*repoMeta, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	var out []*repoMeta
	for _, p := range paths {
		owner := filepath.Base(filepath.Dir(p))
		name := filepath.Base(p)
		name = name[:len(name)-len(".json")]
		if !validRepoName(owner, name) {
			continue
		}
		m, err := s.readMeta(owner, name)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// createRepo initialises an empty bare repository with a default branch and
// its metadata file. It returns false when the repository already exists.
// The caller holds s.mu for writing.
func (s *store) createRepo(ctx context.Context, owner, name, defaultBranch string) (*git.Repository, *repoMeta, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, false, err
	}
	if !validRepoName(owner, name) {
		return nil, nil, false, errUnprocessable("Repository name is invalid")
	}
	if r, m, err := s.open(owner, name); err == nil {
		return r, m, false, nil
	}
	metas, err := s.allMeta()
	if err != nil {
		return nil, nil, false, err
	}
	var maxID int64 = 1000
	for _, m := range metas {
		maxID = max(maxID, m.ID)
	}
	r, err := git.PlainInitWithOptions(s.repoDir(owner, name), &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(defaultBranch)},
	})
	if errors.Is(err, git.ErrRepositoryAlreadyExists) {
		r, err = git.PlainOpen(s.repoDir(owner, name))
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("init %s/%s: %w", owner, name, err)
	}
	m := &repoMeta{ID: maxID + 1, Owner: owner, Name: name, DefaultBranch: defaultBranch,
		CreatedAt: s.now().UTC(), NextPull: 1}
	if err := s.writeMeta(m); err != nil {
		return nil, nil, false, err
	}
	return r, m, true, nil
}

// deleteRepo removes the metadata first (so the repository disappears from
// the API even if removing the objects fails half-way), then the bare repo.
// The caller holds s.mu for writing.
func (s *store) deleteRepo(owner, name string) error {
	if !validRepoName(owner, name) {
		return errNotFound()
	}
	if err := os.Remove(s.metaPath(owner, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errNotFound()
		}
		return fmt.Errorf("delete %s/%s: %w", owner, name, err)
	}
	if err := os.RemoveAll(s.repoDir(owner, name)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", owner, name, err)
	}
	return nil
}
