package idp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// Key states.
const (
	keyNext    = "next"
	keyActive  = "active"
	keyRetired = "retired"
)

// keySet is an immutable snapshot of the signing keys, swapped atomically on rotation.
type keySet struct {
	active *loadedKey
	byKID  map[string]*loadedKey
	jwks   []byte
}

type loadedKey struct {
	rec  SigningKey
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

type keyring struct{ cur atomic.Pointer[keySet] }

func newSigningKey(state string, now time.Time) (*SigningKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	kid, err := ajwt.Thumbprint(ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		return nil, err
	}
	return &SigningKey{KID: kid, Seed: seed, State: state, CreatedAt: now}, nil
}

// ensureKeys makes sure an active and a next key exist (first start) and drops retired
// keys whose tokens have all expired.
func ensureKeys(tx Tx, now time.Time) error {
	keys, err := listJSON[SigningKey](tx, tblKeys, "")
	if err != nil {
		return err
	}
	var haveActive, haveNext bool
	for _, k := range keys {
		switch k.State {
		case keyActive:
			haveActive = true
		case keyNext:
			haveNext = true
		case keyRetired:
			if now.After(k.KeepUntil) {
				if err := tx.Delete(tblKeys, k.KID); err != nil {
					return err
				}
			}
		}
	}
	for _, need := range []struct {
		have  bool
		state string
	}{{haveActive, keyActive}, {haveNext, keyNext}} {
		if need.have {
			continue
		}
		k, err := newSigningKey(need.state, now)
		if err != nil {
			return err
		}
		if err := putJSON(tx, tblKeys, k.KID, k); err != nil {
			return err
		}
	}
	return nil
}

// rotateKeys promotes the published next key to active, retires the active key (kept
// until every token and root delegation it signed has expired) and publishes a new next
// key.
func rotateKeys(tx Tx, now time.Time, keep time.Duration) (string, error) {
	keys, err := listJSON[SigningKey](tx, tblKeys, "")
	if err != nil {
		return "", err
	}
	var newActive string
	for _, k := range keys {
		switch k.State {
		case keyActive:
			k.State, k.KeepUntil = keyRetired, now.Add(keep)
		case keyNext:
			k.State = keyActive
			newActive = k.KID
		default:
			continue
		}
		if err := putJSON(tx, tblKeys, k.KID, k); err != nil {
			return "", err
		}
	}
	if newActive == "" {
		return "", fmt.Errorf("rotate: no next key")
	}
	next, err := newSigningKey(keyNext, now)
	if err != nil {
		return "", err
	}
	return newActive, putJSON(tx, tblKeys, next.KID, next)
}

// loadKeys builds the in-memory key set from storage.
func (kr *keyring) load(ctx context.Context, st Store) error {
	var keys []*SigningKey
	if err := st.View(ctx, func(tx Tx) error {
		var err error
		keys, err = listJSON[SigningKey](tx, tblKeys, "")
		return err
	}); err != nil {
		return err
	}
	ks := &keySet{byKID: map[string]*loadedKey{}}
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
	var pub []ajwt.JWK
	for _, k := range keys {
		priv := ed25519.NewKeyFromSeed(k.Seed)
		lk := &loadedKey{rec: *k, priv: priv, pub: priv.Public().(ed25519.PublicKey)}
		ks.byKID[k.KID] = lk
		if k.State == keyActive {
			ks.active = lk
		}
		j, err := ajwt.JWKFromPublicKey(lk.pub)
		if err != nil {
			return err
		}
		j.Kid, j.Alg, j.Use = k.KID, ajwt.AlgEdDSA, "sig"
		pub = append(pub, *j)
	}
	if ks.active == nil {
		return fmt.Errorf("keys: no active signing key")
	}
	b, err := json.Marshal(map[string]any{"keys": pub})
	if err != nil {
		return err
	}
	ks.jwks = b
	kr.cur.Store(ks)
	return nil
}

func (kr *keyring) get() *keySet { return kr.cur.Load() }

// sign signs claims with the active key.
func (kr *keyring) sign(typ string, claims any) (string, error) {
	k := kr.get().active
	return ajwt.Sign(ajwt.Header{Alg: ajwt.AlgEdDSA, Typ: typ, Kid: k.rec.KID}, claims, k.priv)
}

// verify parses a compact JWT signed by one of our keys: size, no crit, expected typ,
// alg EdDSA, no key headers, known kid, signature.
func (kr *keyring) verify(compact, typ string) (*ajwt.JWS, error) {
	j, err := ajwt.ParseJWS(compact)
	if err != nil {
		return nil, err
	}
	if !j.TypIs(typ) {
		return nil, fmt.Errorf("typ is not %s", typ)
	}
	if j.Header.Alg != ajwt.AlgEdDSA {
		return nil, fmt.Errorf("alg %q is not EdDSA", j.Header.Alg)
	}
	if j.HasKeyHeaders() {
		return nil, fmt.Errorf("jwt carries a key header")
	}
	k, ok := kr.get().byKID[j.Header.Kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid")
	}
	if err := j.Verify(k.pub); err != nil {
		return nil, err
	}
	return j, nil
}
