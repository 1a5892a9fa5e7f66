"""OAuth 2.0 authorization-code flow, Smartcar-style and Tesla-style.

Smartcar: consent page `GET /oauth/authorize` (smartcar's CONNECT_ORIGIN), token endpoint
`POST /oauth/token` (AUTH_ORIGIN) with HTTP Basic client authentication.
Tesla: consent page `GET /oauth2/v3/authorize`, token endpoint `POST /oauth2/v3/token` with
the client credentials in the form body; refresh needs only the client id.
Both issue single-use codes bound to one VIN and the redirect URI, expiring access tokens
and single-use (rotating) refresh tokens, and both take PKCE (RFC 7636, S256 only): a code
consented with a `code_challenge` is exchanged only with the `code_verifier` that hashes to it.
"""

from __future__ import annotations

import base64
import html
import re
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from devkit.simulator.fleet import Oem
from devkit.simulator.responses import gate, oauth_error, sim
from devkit.simulator.state import SimState, Token

router = APIRouter()

#: An S256 challenge: BASE64URL(SHA256(verifier)) without padding, 43 characters.
CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode()
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None, None
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    except ValueError:
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _consent_page(state: SimState, oem: Oem, params: dict[str, str]) -> HTMLResponse:
    only = params.get("single_select_vin")
    options = "".join(
        f'<option value="{html.escape(s.vin)}">{html.escape(f"{s.make} {s.model} ({s.vin})")}</option>'
        for s in state.specs()
        if s.oem is oem and (not only or s.vin == only)
    )
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(params.get(k, ""))}">'
        for k in ("client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method")
    )
    title = "Tesla" if oem is Oem.TESLA else "Smartcar Connect"
    page = (
        f"<!doctype html><title>{title}</title><h1>{title}</h1>"
        f"<p>{html.escape(params.get('client_id', ''))} asks to access your vehicle.</p>"
        f'<form method="post" action="/oauth/allow">{hidden}<select name="vin">{options}</select>'
        '<button type="submit">Allow</button></form>'
    )
    return HTMLResponse(page)


def requested_challenge(params: dict[str, str]) -> tuple[str | None, str | None]:
    """The PKCE challenge of an authorize or consent request, or why it is refused."""
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is None:
        return None, "code_challenge_method without code_challenge" if method else None
    if method != "S256":
        return None, f"code_challenge_method {method!r}: only S256 is supported"
    if not CHALLENGE_PATTERN.match(challenge):
        return None, "code_challenge is not a base64url SHA-256"
    return challenge, None


def _authorize(request: Request, oem: Oem) -> Response:
    state = sim(request)
    params = dict(request.query_params)
    if params.get("client_id") not in state.clients:
        return oauth_error(400, "invalid_client", "unknown client_id")
    _, refused = requested_challenge(params)
    if refused:
        return oauth_error(400, "invalid_request", refused)
    return _consent_page(state, oem, params)


@router.get("/oauth/authorize")
async def smartcar_authorize(request: Request) -> Response:
    return _authorize(request, Oem.SMARTCAR)


@router.get("/oauth2/v3/authorize")
async def tesla_authorize(request: Request) -> Response:
    return _authorize(request, Oem.TESLA)


@router.post("/oauth/allow")
async def allow(request: Request) -> Response:
    """The person clicked "allow": back to the application with a code and its state."""
    state = sim(request)
    form = await _form(request)
    vin = form.get("vin", "")
    if state.vehicle(vin) is None or not form.get("redirect_uri"):
        return oauth_error(400, "invalid_request", "unknown vehicle or missing redirect_uri")
    challenge, refused = requested_challenge(form)
    if refused:
        return oauth_error(400, "invalid_request", refused)
    code = state.issue_code(vin, form["redirect_uri"], form.get("client_id") or None, challenge)
    query = urlencode({"code": code.code, "state": form.get("state", "")})
    return RedirectResponse(f"{form['redirect_uri']}?{query}", status_code=302)


def _token_body(token: Token, state: SimState) -> dict[str, object]:
    body: dict[str, object] = {
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": int(token.expires_at - state.now()),
        "refresh_token": token.refresh_token,
        "refresh_expires_in": int(token.refresh_expires_at - state.now()),
    }
    if token.oem is Oem.TESLA:
        body["id_token"] = "sim." + token.access_token[:16]
        body["state"] = None
    return body


def _grant(state: SimState, oem: Oem, form: dict[str, str], client_id: str) -> Response:
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        code = state.redeem_code(
            form.get("code", ""), client_id, form.get("redirect_uri"), form.get("code_verifier") or None
        )
        if code is None or code.oem is not oem:
            why = "the code is unknown, used, expired or not yours, or its PKCE verifier is wrong"
            return oauth_error(400, "invalid_grant", why)
        state.stats.code_exchanges += 1
        return JSONResponse(_token_body(state.issue_token(client_id, code.oem, code.vin), state))
    if grant_type == "refresh_token":
        token = state.rotate(form.get("refresh_token", ""), client_id)
        if token is None or token.oem is not oem:
            return oauth_error(400, "invalid_grant", "the refresh token is unknown, used or expired")
        state.stats.refreshes += 1
        return JSONResponse(_token_body(token, state))
    return oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r}")


@router.post("/oauth/token")
async def smartcar_token(request: Request) -> Response:
    state = sim(request)
    blocked = gate(state, "oauth")
    if blocked is not None:
        return blocked
    client_id, secret = _basic_auth(request)
    if not state.client_ok(client_id, secret):
        return oauth_error(401, "invalid_client", "client authentication failed")
    return _grant(state, Oem.SMARTCAR, await _form(request), client_id or "")


@router.post("/oauth2/v3/token")
async def tesla_token(request: Request) -> Response:
    state = sim(request)
    blocked = gate(state, "oauth")
    if blocked is not None:
        return blocked
    form = await _form(request)
    client_id = form.get("client_id", "")
    if client_id not in state.clients:
        return oauth_error(401, "invalid_client", "unknown client_id")
    needs_secret = form.get("grant_type") == "authorization_code"
    if needs_secret and not state.client_ok(client_id, form.get("client_secret")):
        return oauth_error(401, "invalid_client", "client authentication failed")
    return _grant(state, Oem.TESLA, form, client_id)
