"""Manus's sandbox over HTTP as the MANUS_CLIENT app: a code (with or without PKCE), the
token endpoint with a JSON body, a refresh body."""

from tests.support.sandbox_pages import CALLBACK, authorize, callback_params, pkce_pair


def get_code(http, urls, challenge=None, **extra):
    params = {
        "client_id": "client_manus",
        "redirect_uri": CALLBACK,
        "state": "s1",
        "scope": "create_task",
        **extra,
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    back = callback_params(authorize(http, urls("manus")["authorize_url"], params))
    assert back["state"] == "s1"
    assert back["iss"] == urls("manus")["issuer"]
    return back["code"]


def token(http, urls, body, **kwargs):
    return http.post(urls("manus")["token_url"], json=body, **kwargs)


def code_body(code, **extra):
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "client_manus",
        **extra,
    }


def refresh_body(refresh_token="x", client_id="client_manus", secret="manus-secret", **extra):
    body = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return body | ({"client_secret": secret} if secret else {}) | extra


def connect(http, urls, mode="pkce_secret"):
    verifier, challenge = pkce_pair()
    with_pkce = mode != "secret"
    code = get_code(http, urls, challenge if with_pkce else None)
    extra = {"code_verifier": verifier} if with_pkce else {}
    if mode != "pkce":
        extra["client_secret"] = "manus-secret"
    response = token(http, urls, code_body(code, **extra))
    assert response.status_code == 200, response.text
    return response.json()
