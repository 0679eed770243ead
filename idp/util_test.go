package idp_test

import (
	"context"
	"net/url"

	"github.com/agentic-jwt/patchcrew/idp"
)

func idpVerify(w *world) (int64, error) { return idp.VerifyAuditChain(context.Background(), w.store) }

func urlEscape(s string) string { return url.QueryEscape(s) }
