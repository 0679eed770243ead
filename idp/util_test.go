package idp_test

import (
	"context"

	"github.com/agentic-jwt/patchcrew/idp"
)

func idpVerify(w *world) (int64, error) { return idp.VerifyAuditChain(context.Background(), w.store) }
