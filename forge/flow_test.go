package forge_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/agentic-jwt/patchcrew/forge"
)

// TestHTTPFlow runs the patching flow over plain HTTP (the go-github version
// is in gogithub_test.go): branch → commit on the branch → PR → list → merge,
// then checks the bare repository with go-git and, when present, git fsck.
func TestHTTPFlow(t *testing.T) {
	base, dir := newForge(t)
	auth := "Bearer " + testToken
	repoURL := base + "/repos/acme/storefront"

	st, m := do(t, "GET", repoURL+"/git/ref/heads/main", auth, "")
	if st != 200 {
		t.Fatalf("get ref: %d %v", st, m)
	}
	mainSHA := m["object"].(map[string]any)["sha"].(string)

	st, m = do(t, "POST", repoURL+"/git/refs", auth, `{"ref":"refs/heads/ajwt/exec-1","sha":"`+mainSHA+`"}`)
	if st != 201 || m["ref"] != "refs/heads/ajwt/exec-1" {
		t.Fatalf("create ref: %d %v", st, m)
	}
	st, m = do(t, "GET", repoURL+"/git/ref/heads/ajwt/exec-1", auth, "")
	if st != 200 || m["object"].(map[string]any)["sha"] != mainSHA {
		t.Fatalf("get new ref: %d %v", st, m)
	}

	st, m = do(t, "GET", repoURL+"/contents/package.json?ref=ajwt/exec-1", auth, "")
	if st != 200 || m["encoding"] != "base64" {
		t.Fatalf("get contents: %d %v", st, m)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(m["content"].(string), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	newPkg := strings.Replace(string(raw), `"lodash": "4.17.20"`, `"lodash": "4.17.21"`, 1)
	body, _ := json.Marshal(map[string]string{"message": "bump lodash", "content": base64.StdEncoding.EncodeToString([]byte(newPkg)),
		"sha": m["sha"].(string), "branch": "ajwt/exec-1"})
	st, m = do(t, "PUT", repoURL+"/contents/package.json", auth, string(body))
	if st != 200 {
		t.Fatalf("put: %d %v", st, m)
	}
	commit := m["commit"].(map[string]any)
	commitSHA := commit["sha"].(string)
	if p := commit["parents"].([]any); len(p) != 1 || p[0].(map[string]any)["sha"] != mainSHA {
		t.Fatalf("parents = %v", p)
	}

	r, err := git.PlainOpen(filepath.Join(dir, "acme", "storefront.git"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(plumbing.NewHash(commitSHA))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != mainSHA {
		t.Fatalf("git parents = %v", c.ParentHashes)
	}
	if f, err := c.File("package.json"); err != nil {
		t.Fatal(err)
	} else if s, _ := f.Contents(); s != newPkg {
		t.Fatalf("package.json = %q", s)
	}
	if got := branchHash(t, dir, "storefront", "main").String(); got != mainSHA {
		t.Fatalf("main moved")
	}

	st, m = do(t, "POST", repoURL+"/pulls", auth, `{"title":"Patch lodash","head":"ajwt/exec-1","base":"main","body":"GHSA-35jh-r3h4-6jhm"}`)
	if st != 201 || m["number"] != 1.0 || m["head"].(map[string]any)["sha"] != commitSHA {
		t.Fatalf("create PR: %d %v", st, m)
	}
	st, m = do(t, "POST", repoURL+"/pulls", auth, `{"title":"again","head":"ajwt/exec-1","base":"main"}`)
	if st != 422 || m["message"] != "Validation Failed: A pull request already exists for acme:ajwt/exec-1." {
		t.Fatalf("duplicate PR: %d %v", st, m)
	}
	st, m = do(t, "GET", repoURL+"/pulls/1", auth, "")
	if st != 200 || m["state"] != "open" {
		t.Fatalf("get PR: %d %v", st, m)
	}
	st, m = do(t, "PUT", repoURL+"/pulls/1/merge", auth, `{"sha":"`+mainSHA+`"}`)
	if st != 409 {
		t.Fatalf("merge with stale sha: %d %v", st, m)
	}
	st, m = do(t, "PUT", repoURL+"/pulls/1/merge", auth, `{"merge_method":"merge"}`)
	if st != 200 || m["merged"] != true {
		t.Fatalf("merge: %d %v", st, m)
	}
	mergeSHA := m["sha"].(string)
	mc, err := r.CommitObject(branchHash(t, dir, "storefront", "main"))
	if err != nil {
		t.Fatal(err)
	}
	if mc.Hash.String() != mergeSHA || fmt.Sprint(mc.ParentHashes) != fmt.Sprint([]plumbing.Hash{plumbing.NewHash(mainSHA), plumbing.NewHash(commitSHA)}) {
		t.Fatalf("merge commit %s parents %v", mc.Hash, mc.ParentHashes)
	}

	// A contents PUT without "branch" writes the default branch (as GitHub does).
	body, _ = json.Marshal(map[string]string{"message": "add notes", "content": base64.StdEncoding.EncodeToString([]byte("hi\n"))})
	st, m = do(t, "PUT", repoURL+"/contents/docs/notes.md", auth, string(body))
	if st != 201 {
		t.Fatalf("put default branch: %d %v", st, m)
	}
	if got := branchHash(t, dir, "storefront", "main").String(); got != m["commit"].(map[string]any)["sha"] {
		t.Fatalf("main not advanced")
	}

	st, m = do(t, "GET", repoURL+"/git/trees/main?recursive=1", auth, "")
	if st != 200 {
		t.Fatalf("tree: %d %v", st, m)
	}
	var paths []string
	for _, e := range m["tree"].([]any) {
		paths = append(paths, e.(map[string]any)["path"].(string))
	}
	if strings.Join(paths, ",") != "README.md,docs,docs/notes.md,index.js,package-lock.json,package.json" {
		t.Fatalf("tree = %v", paths)
	}

	if gitBin, err := exec.LookPath("git"); err == nil {
		out, err := exec.Command(gitBin, "--git-dir", filepath.Join(dir, "acme", "storefront.git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
		if err != nil {
			t.Fatalf("git fsck: %v\n%s", err, out)
		}
		out, err = exec.Command(gitBin, "--git-dir", filepath.Join(dir, "acme", "storefront.git"), "log", "--format=%s", "main").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "bump lodash") {
			t.Fatalf("git log: %v\n%s", err, out)
		}
	}

	st, _ = do(t, "DELETE", repoURL, auth, "")
	if st != 204 {
		t.Fatalf("delete: %d", st)
	}
	st, m = do(t, "GET", repoURL, auth, "")
	if st != 404 || m["message"] != "Not Found" {
		t.Fatalf("after delete: %d %v", st, m)
	}
}

// TestSeedIdempotentAndReproducible: seeding twice changes nothing, and two
// data dirs get the same commit ids (fixed author, date and content).
func TestSeedIdempotentAndReproducible(t *testing.T) {
	ctx := t.Context()
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, a, b} {
		if err := forge.Seed(ctx, d); err != nil {
			t.Fatalf("Seed(%s): %v", d, err)
		}
	}
	for _, repo := range []string{"webapp", "storefront", "billing", "infra"} {
		ha, hb := branchHash(t, a, repo, "main"), branchHash(t, b, repo, "main")
		if ha != hb {
			t.Fatalf("%s: %s vs %s", repo, ha, hb)
		}
		r, err := git.PlainOpen(filepath.Join(a, "acme", repo+".git"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.CommitObject(ha)
		if err != nil {
			t.Fatal(err)
		}
		if c.Author.String() != "ajwt forge <forge@localhost>" || len(c.ParentHashes) != 0 {
			t.Fatalf("%s: seed commit by %s with %d parents", repo, c.Author, len(c.ParentHashes))
		}
		if _, err := os.Stat(filepath.Join(a, "acme", repo+".git", "HEAD")); err != nil {
			t.Fatalf("%s: not a bare repo: %v", repo, err)
		}
	}
}

func putFile(t *testing.T, base, repo, path, branch, content, sha string) (int, map[string]any) {
	t.Helper()
	req := map[string]string{"message": "edit " + path, "content": base64.StdEncoding.EncodeToString([]byte(content))}
	if branch != "" {
		req["branch"] = branch
	}
	if sha != "" {
		req["sha"] = sha
	}
	body, _ := json.Marshal(req)
	return do(t, "PUT", base+"/repos/acme/"+repo+"/contents/"+path, "token "+testToken, string(body))
}

func blobSHA(t *testing.T, base, repo, path, ref string) string {
	t.Helper()
	st, m := do(t, "GET", base+"/repos/acme/"+repo+"/contents/"+path+"?ref="+ref, "token "+testToken, "")
	if st != 200 {
		t.Fatalf("get %s@%s: %d %v", path, ref, st, m)
	}
	return m["sha"].(string)
}

// TestMergeConflictAndSquash: a file changed differently on both sides is
// not mergeable (405, nothing written); a squash merge has one parent.
func TestMergeConflictAndSquash(t *testing.T) {
	base, dir := newForge(t)
	auth := "token " + testToken
	mainSHA := branchHash(t, dir, "webapp", "main").String()
	for _, b := range []string{"one", "two", "three"} {
		if st, m := do(t, "POST", base+"/repos/acme/webapp/git/refs", auth, `{"ref":"refs/heads/`+b+`","sha":"`+mainSHA+`"}`); st != 201 {
			t.Fatalf("ref %s: %d %v", b, st, m)
		}
	}
	goMod := blobSHA(t, base, "webapp", "go.mod", "main")
	for _, b := range []string{"one", "two"} {
		if st, m := putFile(t, base, "webapp", "go.mod", b, "module x // "+b+"\n", goMod); st != 200 {
			t.Fatalf("put on %s: %d %v", b, st, m)
		}
		if st, m := do(t, "POST", base+"/repos/acme/webapp/pulls", auth, `{"title":"`+b+`","head":"`+b+`","base":"main"}`); st != 201 {
			t.Fatalf("PR %s: %d %v", b, st, m)
		}
	}
	if st, m := putFile(t, base, "webapp", "docs/three.md", "three", "three\n", ""); st != 201 {
		t.Fatalf("put three: %d %v", st, m)
	}
	if st, m := do(t, "POST", base+"/repos/acme/webapp/pulls", auth, `{"title":"three","head":"three","base":"main"}`); st != 201 {
		t.Fatalf("PR three: %d %v", st, m)
	}
	if st, m := do(t, "PUT", base+"/repos/acme/webapp/pulls/1/merge", auth, `{}`); st != 200 {
		t.Fatalf("merge 1: %d %v", st, m)
	}
	afterOne := branchHash(t, dir, "webapp", "main")
	st, m := do(t, "PUT", base+"/repos/acme/webapp/pulls/2/merge", auth, `{}`)
	if st != 405 || m["message"] != "Pull Request is not mergeable" {
		t.Fatalf("conflicting merge: %d %v", st, m)
	}
	if branchHash(t, dir, "webapp", "main") != afterOne {
		t.Fatal("main moved on a refused merge")
	}
	st, m = do(t, "PUT", base+"/repos/acme/webapp/pulls/3/merge", auth, `{"merge_method":"squash"}`)
	if st != 200 {
		t.Fatalf("squash: %d %v", st, m)
	}
	r, err := git.PlainOpen(filepath.Join(dir, "acme", "webapp.git"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(branchHash(t, dir, "webapp", "main"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0] != afterOne || c.Message != "three (#3)\n" {
		t.Fatalf("squash commit %q parents %v", c.Message, c.ParentHashes)
	}
	for p, want := range map[string]string{"go.mod": "module x // one\n", "docs/three.md": "three\n"} {
		f, err := c.File(p)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := f.Contents(); s != want {
			t.Fatalf("%s = %q", p, s)
		}
	}
	if st, m := do(t, "PUT", base+"/repos/acme/webapp/pulls/3/merge", auth, `{"merge_method":"rebase"}`); st != 422 {
		t.Fatalf("rebase: %d %v", st, m)
	}
}

// TestConcurrentWrites: parallel commits to one branch are serialised, each
// on top of the previous one; none is lost.
func TestConcurrentWrites(t *testing.T) {
	base, dir := newForge(t)
	const n = 8
	errs := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := map[string]string{"message": fmt.Sprintf("f%d", i), "content": base64.StdEncoding.EncodeToString([]byte("x")), "branch": "main"}
			body, _ := json.Marshal(req)
			hr, _ := http.NewRequest("PUT", fmt.Sprintf("%s/repos/acme/billing/contents/f/%d.txt", base, i), strings.NewReader(string(body)))
			hr.Header.Set("Authorization", "token "+testToken)
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				errs <- fmt.Sprintf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	r, err := git.PlainOpen(filepath.Join(dir, "acme", "billing.git"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(branchHash(t, dir, "billing", "main"))
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for len(c.ParentHashes) == 1 {
		depth++
		if c, err = r.CommitObject(c.ParentHashes[0]); err != nil {
			t.Fatal(err)
		}
	}
	if depth != n {
		t.Fatalf("history depth %d, want %d", depth, n)
	}
	head, _ := r.CommitObject(branchHash(t, dir, "billing", "main"))
	for i := range n {
		if _, err := head.File(fmt.Sprintf("f/%d.txt", i)); err != nil {
			t.Errorf("f/%d.txt lost: %v", i, err)
		}
	}
}
