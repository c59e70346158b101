"""HTTPS and header settings, the Content-Security-Policy, the tenant switcher without
JavaScript, and the idle timeout (issue 11, items 5 and 8)."""

import os
import re
import secrets
import subprocess
import sys
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection, PrivateApp
from portal.middleware import LAST_SEEN
from portal.models import Membership
from sandbox.demo import create_demo_apps

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


# --- The Content-Security-Policy ------------------------------------------------------------


@pytest.fixture
def portal_pages(acme, alice, bob, globex):
    """alice (admin) in two tenants, with an app per provider, a connection and an app whose
    authorize URL is at the real provider."""
    Membership.objects.create(user=alice, tenant=globex, role=Membership.Role.ADMIN)
    apps = create_demo_apps(tenant=acme, user=alice)
    external = PrivateApp.objects.create(
        tenant=acme,
        name="Books",
        provider="manu_online",
        status=PrivateApp.Status.ENABLED,
        grant_type="authorization_code",
        client_id="books",
        scopes=["API_ALL"],
        redirect_uris=["http://127.0.0.1:8000/oauth/callback/"],
    )
    for app in (apps[0], external):
        Connection.objects.create(
            tenant=acme, app=app, user=alice, status="active", account_name="Acme Oy"
        )
    return external


def crawl(client, start: list[str], limit: int = 150) -> dict[str, object]:
    """GET every same-site page reachable by links from `start` (no logout, no admin)."""
    seen, queue, pages = set(start), deque(start), {}
    while queue and len(pages) < limit:
        path = queue.popleft()
        response = client.get(path)
        pages[path] = response
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for href in re.findall(r'href="([^"]+)"', response.content.decode()):
            parts = urlsplit(href)
            if parts.netloc or not parts.path.startswith("/"):
                continue
            if parts.path.startswith(("/static/", "/admin/", "/logout/")) or parts.path in seen:
                continue
            seen.add(parts.path)
            queue.append(parts.path)
    return pages


def test_every_html_page_has_a_csp_that_allows_no_inline_script(client, login, alice, portal_pages):
    anonymous = crawl(client, [reverse("login")])
    signed_in = crawl(login(alice), ["/", "/t/acme/"])
    pages = {**anonymous, **signed_in}
    html = {p: r for p, r in pages.items() if "text/html" in r.get("Content-Type", "")}
    assert len(html) >= 10, sorted(pages)  # the crawl really walked the portal

    for path, response in html.items():
        assert "Content-Security-Policy" in response.headers, path
        d = csp_directives(response)
        assert d["default-src"] == ["'self'"], path
        assert d["script-src"] == ["'self'"], path
        assert d["style-src"] == ["'self'"], path
        assert d["img-src"] == ["'self'", "data:"], path
        assert d["object-src"] == d["base-uri"] == d["frame-ancestors"] == ["'none'"], path
        assert d["form-action"][0] == "'self'", path
        assert not any("unsafe" in v for values in d.values() for v in values), (path, d)


def test_pages_with_connect_or_reconnect_let_forms_redirect_to_the_provider(
    login, alice, portal_pages
):
    client = login(alice)
    app_page = client.get(reverse("app_detail", args=["acme", portal_pages.pk]))
    conn = portal_pages.connections.get()
    conn_page = client.get(reverse("connection_detail", args=["acme", conn.pk]))
    listing = client.get(reverse("app_list", args=["acme"]))

    # Browsers check form-action on every redirect a form follows: Connect's redirect to
    # https://auth.manuonline.com/oauth/authorize would be blocked by 'self' alone.
    assert csp_directives(app_page)["form-action"] == ["'self'", "https://auth.manuonline.com"]
    assert csp_directives(conn_page)["form-action"] == ["'self'", "https://auth.manuonline.com"]
    assert csp_directives(listing)["form-action"] == ["'self'"]


def test_the_provider_sandbox_pages_carry_the_csp_too(login, bob, settings, acme, alice):
    apps = {a.provider: a for a in create_demo_apps(tenant=acme, user=alice)}
    client = login(bob)
    start = client.post(reverse("app_connect", args=["acme", apps["manu_online"].pk]))
    authorize = urlsplit(start.url)
    flow = client.get(f"{authorize.path}?{authorize.query}")
    page = client.get(flow["Location"])
    assert b'id="username"' in page.content  # the sandbox's sign-in page
    assert csp_directives(page)["style-src"] == ["'self'"]


INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
INLINE_STYLE = re.compile(r"<style\b|<[^>]*\sstyle\s*=", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def templates() -> list[Path]:
    found = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(found) > 20, TEMPLATE_DIRS
    return found


def test_no_template_has_inline_script_style_or_event_handlers():
    problems = []
    for path in templates():
        text = path.read_text()
        rel = path.relative_to(ROOT)
        problems += [f"{rel}: event handler {m.group(0)!r}" for m in INLINE_HANDLER.finditer(text)]
        problems += [
            f"{rel}: inline <script> body"
            for attrs, body in SCRIPT.findall(text)
            if body.strip() or "src=" not in attrs
        ]
        problems += [f"{rel}: inline style {m.group(0)!r}" for m in INLINE_STYLE.finditer(text)]
        problems += [f"{rel}: javascript: URL" for _ in JS_URL.finditer(text)]
    assert problems == []


def test_the_template_scan_catches_what_it_looks_for():
    offenders = [
        '<select onchange="go()">',
        '<form class="x"\n      onsubmit="return confirm(1)">',
        "<button ONCLICK='x()'>",
    ]
    assert all(INLINE_HANDLER.search(o) for o in offenders)
    assert not INLINE_HANDLER.search('<form data-confirm="on=off">')
    assert SCRIPT.findall("<script>\n  alert(1)\n</script>")[0][1].strip()
    assert not SCRIPT.findall('<script src="/static/portal/portal.js" defer></script>')[0][1]
    assert INLINE_STYLE.search('<p style="color:red">') and INLINE_STYLE.search("<style>")


# --- The tenant switcher without JavaScript ------------------------------------------------


def test_the_tenant_switcher_is_a_plain_form_that_switches_by_post(login, bob, globex):
    Membership.objects.create(user=bob, tenant=globex, role=Membership.Role.MEMBER)
    client = login(bob)
    page = client.get(reverse("dashboard", args=["acme"])).content.decode()

    form = re.search(r'<form method="post" action="/" class="switcher".*?</form>', page, re.S)
    assert form, page
    assert 'name="tenant"' in form.group(0) and 'type="submit"' in form.group(0)
    assert 'name="csrfmiddlewaretoken"' in form.group(0)
    assert re.search(r'<option value="acme"\s+selected>', form.group(0))

    response = client.post(reverse("home"), {"tenant": "globex"})
    assert response.status_code == 302
    assert response.url == reverse("dashboard", args=["globex"])
    assert client.get(response.url).status_code == 200


def test_the_switcher_cannot_switch_into_a_foreign_tenant(login, bob, carol):
    client = login(bob)
    assert client.post(reverse("home"), {"tenant": "globex"}).status_code == 404
    assert client.post(reverse("home"), {}).status_code == 404


def test_the_switcher_post_needs_the_csrf_token(bob, globex):
    from django.test import Client

    Membership.objects.create(user=bob, tenant=globex, role=Membership.Role.MEMBER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(reverse("home"), {"tenant": "globex"}).status_code == 403


# --- Idle timeout ---------------------------------------------------------------------------


def set_last_seen(client, seconds_ago: int) -> None:
    session = client.session
    session[LAST_SEEN] = int(time.time()) - seconds_ago
    session.save()


def test_an_idle_session_is_signed_out_after_session_idle_seconds(login, bob, settings):
    settings.SESSION_IDLE_SECONDS = 60
    client = login(bob)
    dashboard = reverse("dashboard", args=["acme"])
    assert client.get(dashboard).status_code == 200
    assert client.session[LAST_SEEN] >= int(time.time()) - 1

    set_last_seen(client, 59)  # active within the limit: still signed in
    assert client.get(dashboard).status_code == 200

    set_last_seen(client, 61)
    response = client.get(dashboard)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "_auth_user_id" not in client.session
    assert client.get(dashboard).status_code == 302  # stays signed out
    login_page = client.get(response.url).content.decode()
    assert "signed out after a period of inactivity" in login_page


def test_the_idle_timeout_can_be_turned_off(login, bob, settings):
    settings.SESSION_IDLE_SECONDS = 0
    client = login(bob)
    set_last_seen(client, 10**6)
    assert client.get(reverse("dashboard", args=["acme"])).status_code == 200


def test_activity_does_not_stretch_the_session_past_session_cookie_age(login, bob, settings):
    settings.SESSION_COOKIE_AGE = 3600
    client = login(bob)
    client.get(reverse("dashboard", args=["acme"]))
    expiry = client.session.get_expiry_date()
    assert timezone.now() < expiry <= timezone.now() + timedelta(seconds=3600)
    client.get(reverse("dashboard", args=["acme"]))  # a later save keeps the same end
    assert client.session.get_expiry_date() == expiry


# --- Settings -------------------------------------------------------------------------------


def test_the_test_settings_do_not_redirect_to_https(settings, client, db):
    # (pytest-django runs the tests with DEBUG off; the settings were read with DEBUG=true.)
    assert not settings.SECURE_SSL_REDIRECT
    assert settings.SECURE_HSTS_SECONDS == 0
    assert client.get(reverse("login")).status_code == 200


def production_env(tmp_path, **overrides) -> dict[str, str]:
    """The production environment documented in README.md, nothing inherited that the
    settings read (CI exports DATABASE_URL and REDIS_URL)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "CSP_", "DJANGO_"))
        and k not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS"}
        and k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PORTAL_BASE_URL"}
        and k not in {"SANDBOX_ENABLED", "VAR_DIR"}
    }
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "portal.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
        "PORTAL_BASE_URL": "https://portal.example.com",
        "SANDBOX_ENABLED": "false",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        **overrides,
    }


def test_check_deploy_passes_with_the_documented_production_environment(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def read_settings(tmp_path, names: list[str], **overrides) -> dict[str, str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        f"[print(n, repr(getattr(s, n, None)), sep='=') for n in {names!r}]"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_production_defaults_and_the_proxy_header(tmp_path):
    names = [
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_AGE",
        "SESSION_IDLE_SECONDS",
    ]
    defaults = read_settings(tmp_path, names)
    assert defaults == {
        "SECURE_SSL_REDIRECT": "True",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_PRELOAD": "False",
        "SECURE_PROXY_SSL_HEADER": "None",
        "SESSION_COOKIE_SECURE": "True",
        "CSRF_COOKIE_SECURE": "True",
        "SESSION_COOKIE_AGE": "43200",
        "SESSION_IDLE_SECONDS": "1800",
    }
    behind_proxy = read_settings(
        tmp_path,
        ["SECURE_PROXY_SSL_HEADER"],
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_a_malformed_proxy_header_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=production_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HTTP_X_FORWARDED_PROTO,https" in result.stderr
