package forge

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// getRepo serves GET /repos/{owner}/{repo}.
func (s *Server) getRepo(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	_, m, err := s.store.open(owner, name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.repoView(baseURL(c), m))
}

// getRepoByID serves GET /repositories/{id}.
func (s *Server) getRepoByID(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound()
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	metas, err := s.store.allMeta()
	if err != nil {
		return err
	}
	for _, m := range metas {
		if m.ID == id {
			return c.JSON(http.StatusOK, s.repoView(baseURL(c), m))
		}
	}
	return errNotFound()
}

// deleteRepo serves DELETE /repos/{owner}/{repo}: 204, then 404 for good.
func (s *Server) deleteRepo(c echo.Context) error {
	owner, name, err := repoParams(c)
	if err != nil {
		return err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if err := s.store.deleteRepo(owner, name); err != nil {
		return err
	}
	s.log.InfoContext(c.Request().Context(), "forge repository deleted", "repo", owner+"/"+name)
	return c.NoContent(http.StatusNoContent)
}
