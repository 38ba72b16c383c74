"""Who may call the `langgraph dev` server, and which threads they see (langgraph.json `auth`).

Authentication: a bearer JWT (HS256, `LEADBOOST_JWT_SECRET`, issuer `leadboost`,
audience `radar`, `exp` required) or, when no secret is set, a static API key from
`LEADBOOST_API_KEYS` ("key:owner,key:owner") sent as `Authorization: Bearer <key>` or
`x-api-key: <key>`. Nothing configured: every request is refused, never let through.

Authorization follows LangGraph's resource-authorization pattern: whatever a caller
creates is stamped `metadata.owner`, and every read, search, update, delete and run is
filtered by that owner, so another owner's thread looks like it does not exist (404).
"""

from __future__ import annotations

import hmac
import os
import time

import jwt
from langgraph_sdk import Auth

ISSUER, AUDIENCE = "leadboost", "radar"
SETUP = ("set LEADBOOST_JWT_SECRET (then mint tokens with `leadboost token --owner NAME`) "
         "or LEADBOOST_API_KEYS=key:owner[,key:owner]")

auth = Auth()


def mint_token(owner: str, ttl_seconds: int, secret: str) -> str:
    """A token `authenticate` accepts for `owner` until `ttl_seconds` from now."""
    if not owner or ttl_seconds <= 0 or not secret:
        raise ValueError("mint_token needs an owner, a positive ttl and a secret")
    now = int(time.time())
    claims = {"sub": owner, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def _refuse(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=401, detail=detail,
                                         headers={"WWW-Authenticate": "Bearer"})


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _owner_from_jwt(token: str, secret: str) -> str:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iss", "aud", "sub"]})
    except jwt.ExpiredSignatureError:
        raise _refuse("token expired: mint a new one with `leadboost token`") from None
    except jwt.InvalidAudienceError:
        raise _refuse(f"token audience is not {AUDIENCE!r}") from None
    except jwt.InvalidIssuerError:
        raise _refuse(f"token issuer is not {ISSUER!r}") from None
    except jwt.InvalidSignatureError:
        raise _refuse("token signature does not verify with LEADBOOST_JWT_SECRET") from None
    except jwt.PyJWTError as exc:
        raise _refuse(f"invalid token: {exc}") from None
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise _refuse("token has no owner (`sub`)")
    return claims["sub"]


def _owner_from_key(key: str, keys: str) -> str:
    """Compare against every configured key in constant time, so timing tells nothing."""
    owner = None
    for pair in filter(None, (p.strip() for p in keys.split(","))):
        known, _, name = pair.partition(":")
        if not known or not name.strip():
            raise Auth.exceptions.HTTPException(500, "server misconfigured: LEADBOOST_API_KEYS entries are key:owner")
        if hmac.compare_digest(known.encode(), key.encode()):
            owner = name.strip()
    if owner is None:
        raise _refuse("unknown API key")
    return owner


@auth.authenticate
async def authenticate(authorization: str | None, headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    """Every request, Studio's included (`disable_studio_auth`), must prove an owner."""
    secret, keys = os.environ.get("LEADBOOST_JWT_SECRET", ""), os.environ.get("LEADBOOST_API_KEYS", "")
    if not secret and not keys.strip():
        raise _refuse(f"server has no credentials configured: {SETUP}")
    token = _bearer(authorization)
    if secret:
        if not token:
            raise _refuse("missing token: send `Authorization: Bearer <jwt>` (mint one with `leadboost token`)")
        return {"identity": _owner_from_jwt(token, secret), "permissions": []}
    key = token or headers.get(b"x-api-key", b"").decode(errors="replace").strip()
    if not key:
        raise _refuse("missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`")
    return {"identity": _owner_from_key(key, keys), "permissions": []}


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    """Threads, runs, crons: stamp the owner on what is written, filter everything by it."""
    owner = {"owner": ctx.user.identity}
    if ctx.action in ("create", "create_run", "update"):
        _stamp(value, owner)
    return owner


@auth.on.assistants
async def own_or_system_assistants(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    """Like `owner_only`, except that everyone may read the assistant `langgraph.json` declares
    (`radar`, created by the server with `created_by: system`), but not change it."""
    owner = {"owner": ctx.user.identity}
    if ctx.action in ("create", "update"):
        _stamp(value, owner)
        value["metadata"].pop("created_by", None)  # nobody may pass their assistant off as the system's
        return owner
    if ctx.action in ("read", "search"):
        return {"$or": [owner, {"created_by": "system"}]}
    return owner


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict) -> None:
    """The long-term store (not used by the graph today) is scoped under the owner's namespace."""
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        value["namespace"] = (ctx.user.identity, *namespace)


def _stamp(value: dict, owner: dict) -> None:
    if not isinstance(value.get("metadata"), dict):
        value["metadata"] = {}
    value["metadata"].update(owner)
