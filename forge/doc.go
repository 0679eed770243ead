// Package forge is a small GitHub-REST-compatible server backed by real bare
// git repositories (go-git, no work tree on disk). It is the offline default
// upstream for the GitHub side of the A-JWT demo (DESIGN §3, row forge/).
//
// Layout of the data directory:
//
//	<DataDir>/<owner>/<repo>.git   bare repository (git log works on it)
//	<DataDir>/<owner>/<repo>.json  repository id, pull requests (written atomically)
//
// Endpoints (GitHub REST shapes; errors are {"message", "documentation_url"}):
//
//	GET    /repos/{owner}/{repo}
//	DELETE /repos/{owner}/{repo}
//	GET    /repositories/{id}
//	GET    /repos/{owner}/{repo}/git/ref/heads/{branch...}
//	POST   /repos/{owner}/{repo}/git/refs                    {ref, sha}
//	DELETE /repos/{owner}/{repo}/git/refs/heads/{branch...}
//	GET    /repos/{owner}/{repo}/git/trees/{sha-or-ref}[?recursive=1]
//	GET    /repos/{owner}/{repo}/contents/{path...}[?ref=]
//	PUT    /repos/{owner}/{repo}/contents/{path...}         {message, content, sha, branch, author, committer}
//	POST   /repos/{owner}/{repo}/pulls                      {title, head, base, body, draft, maintainer_can_modify}
//	GET    /repos/{owner}/{repo}/pulls[?state=&head=&base=]
//	GET    /repos/{owner}/{repo}/pulls/{number}
//	PUT    /repos/{owner}/{repo}/pulls/{number}/merge       {commit_title, commit_message, sha, merge_method}
//	GET    /healthz                                         (no token; DESIGN §5.8)
//
// Every request must carry the configured token; content paths with an empty,
// ".", "..", or ".git" component are refused. The dangerous endpoints (merge,
// delete) exist on purpose so that an attack can really try them.
package forge
