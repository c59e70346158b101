"""Manhattan Active (password grant) and Manitou Group (client credentials, subscription key)."""

import pytest

from sandbox import registry

pytestmark = pytest.mark.django_db(transaction=True)

DETAILS = "/organization/api/organization/user/allDetails/userId/"


@pytest.fixture
def manhattan(db):
    registry.create_user(provider="manhattan_active", username="svc.api", password="pw")
    registry.create_user(provider="manhattan_active", username="someone", password="pw2")
    return registry.register_client(
        provider="manhattan_active", client_id="omnicomponent.1.0.0", secrets=["mh-secret"]
    )


@pytest.fixture
def manitou(db):
    return registry.register_client(
        provider="manitou_group",
        client_id="0oad7y8kitD94CmNC0x7",
        secrets=["secret-1", "secret-2"],
        subscription_keys=["sub-primary", "sub-secondary"],
    )


def password_grant(
    http, urls, username="svc.api", password="pw", auth=("omnicomponent.1.0.0", "mh-secret")
):
    return http.post(
        urls("manhattan_active")["token_url"],
        data={"grant_type": "password", "username": username, "password": password},
        auth=auth,
    )


def test_manhattan_password_grant_and_user_details(manhattan, http, urls):
    response = password_grant(http, urls)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["expires_in"] == 3600
    assert tokens["token_type"] == "bearer"
    assert "refresh_token" not in tokens  # password grant: the portal fetches a new token
    details = http.get(
        urls("manhattan_active")["api_base_url"] + DETAILS + "svc.api",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
    )
    assert details.status_code == 200
    assert details.json()["data"]["UserId"] == "svc.api"
    other = http.get(
        urls("manhattan_active")["api_base_url"] + DETAILS + "someone",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
    )
    assert other.status_code == 403
    assert (
        http.get(urls("manhattan_active")["api_base_url"] + DETAILS + "svc.api").status_code == 401
    )


@pytest.mark.parametrize(("username", "password"), [("svc.api", "wrong"), ("nobody", "pw")])
def test_manhattan_bad_user_is_400(manhattan, http, urls, username, password):
    # Seed 002: "If you receive a 400 Client Error ... your username and password are invalid".
    response = password_grant(http, urls, username, password)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_manhattan_needs_basic_client_auth(manhattan, http, urls):
    bad = password_grant(http, urls, auth=("omnicomponent.1.0.0", "nope"))
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    in_body = http.post(
        urls("manhattan_active")["token_url"],
        data={
            "grant_type": "password",
            "username": "svc.api",
            "password": "pw",
            "client_id": "omnicomponent.1.0.0",
            "client_secret": "mh-secret",
        },
    )
    assert in_body.status_code == 401


def test_manitou_client_credentials_and_products(manitou, http, urls):
    response = http.post(
        urls("manitou_group")["token_url"],
        data={"grant_type": "client_credentials", "scope": "Products"},
        auth=("0oad7y8kitD94CmNC0x7", "secret-2"),
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3568
    assert tokens["scope"] == "Products"
    assert "refresh_token" not in tokens
    products = http.get(
        urls("manitou_group")["api_base_url"] + "/v1/products",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
    )
    assert products.status_code == 200
    assert isinstance(products.json(), list) and products.json()


@pytest.mark.parametrize(
    ("key", "status"), [("sub-primary", 200), ("sub-secondary", 200), ("nope", 401)]
)
def test_manitou_subscription_key(manitou, http, urls, key, status):
    response = http.get(
        urls("manitou_group")["api_base_url"] + "/v1/products",
        headers={"Ocp-Apim-Subscription-Key": key},
    )
    assert response.status_code == status


def test_manitou_errors(manitou, http, urls):
    token_url = urls("manitou_group")["token_url"]
    scope = http.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "Everything"},
        auth=("0oad7y8kitD94CmNC0x7", "secret-1"),
    )
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_scope")
    grant = http.post(
        token_url, data={"grant_type": "password"}, auth=("0oad7y8kitD94CmNC0x7", "secret-1")
    )
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    no_auth = http.post(token_url, data={"grant_type": "client_credentials", "scope": "Products"})
    assert (no_auth.status_code, no_auth.json()["error"]) == (401, "invalid_client")
    assert http.get(urls("manitou_group")["api_base_url"] + "/v1/products").status_code == 401


def test_urls_for_every_provider(live_server):
    from sandbox import urls_for

    base = live_server.url
    assert urls_for("manu_online", base) == {
        "authorize_url": base + "/sandbox/manu-online/oauth/authorize",
        "token_url": base + "/sandbox/manu-online/oauth/token",
        "revoke_url": "",
        "api_base_url": base + "/sandbox/manu-online",
        "issuer": base + "/sandbox/manu-online",
    }
    assert urls_for("manus", base + "/")["revoke_url"] == base + "/sandbox/manus/oauth/revoke"
    assert urls_for("manus", base)["authorize_url"] == base + "/sandbox/manus/openapi/oauth"
    assert (
        urls_for("manhattan_active", base)["token_url"]
        == base + "/sandbox/manhattan-active/oauth/token"
    )
    assert urls_for("manitou_group", base)["token_url"] == base + "/sandbox/manitou-group/v1/token"
