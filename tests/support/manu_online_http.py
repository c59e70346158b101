"""Manu Online's sandbox over HTTP as the MANU_CLIENT app: authorize, exchange the code,
refresh."""

from tests.support.sandbox_pages import CALLBACK, authorize, callback_params


def start(urls, **extra):
    params = {
        "response_type": "code",
        "client_id": "manu-app",
        "redirect_uri": CALLBACK,
        "scope": "API_ALL",
        "state": "st-123",
        **extra,
    }
    return urls("manu_online")["authorize_url"], params


def exchange(http, urls, code, **extra):
    return http.post(
        urls("manu_online")["token_url"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "manu-app",
            "client_secret": "manu-secret-1",
            **extra,
        },
    )


def refresh(http, urls, refresh_token, secret="manu-secret-1"):
    return http.post(
        urls("manu_online")["token_url"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "manu-app",
            "client_secret": secret,
        },
    )


def connect(http, urls, account="1002"):
    url, params = start(urls)
    back = callback_params(authorize(http, url, params, account=account))
    response = exchange(http, urls, back["code"])
    assert response.status_code == 200, response.text
    return response.json()
