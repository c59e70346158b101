import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from connections.validators import validate_redirect_uri, validate_redirect_uris

GOOD = [
    "https://portal.example/oauth/callback/",
    "http://localhost:8000/cb",
    "http://127.0.0.1/cb?x=1",
    "https://[::1]:8443/cb",
    "com.example.app://oauth",
    "myapp:/callback",
]

BAD = [
    ("/oauth/callback/", "absolute"),
    ("portal.example/cb", "absolute"),
    ("https://*.example.com/cb", "wildcard"),
    ("https://portal.example/cb*", "wildcard"),
    ("https://portal.example/cb#frag", "fragment"),
    ("https://portal.example/cb#", "fragment"),
    ("javascript:alert(1)", "forbidden"),
    ("JavaScript://x/%0aalert(1)", "forbidden"),
    ("data:text/html,hi", "forbidden"),
    ("file:///etc/passwd", "forbidden"),
    ("about:blank", "forbidden"),
    ("vbscript:msgbox", "forbidden"),
    ("https:///no-host", "host"),
    ("http://", "host"),
    ("http:/path-only", "host"),
    ("https://[::1/cb", "not a valid"),
    ("https://example.com:99999/cb", "not a valid"),
    ("https://exa mple.com/cb", "spaces"),
    ("com.example.app:", "nothing follows"),
    ("https://example.com/" + "a" * 600, "longer"),
]


@pytest.mark.parametrize("uri", GOOD)
def test_it_accepts_absolute_and_custom_scheme_uris(uri):
    validate_redirect_uri(uri)


@pytest.mark.parametrize(("uri", "reason"), BAD)
def test_it_rejects_each_broken_rule_with_its_own_message(uri, reason):
    with pytest.raises(ValidationError) as exc:
        validate_redirect_uri(uri)
    assert reason in exc.value.messages[0]


def test_it_rejects_duplicates_and_reports_every_error():
    with pytest.raises(ValidationError) as exc:
        validate_redirect_uris(
            ["https://a.example/cb", "https://a.example/cb", "https://b.example/#x"], limit=3
        )
    assert len(exc.value.messages) == 2
    assert any("twice" in m for m in exc.value.messages)


def test_it_enforces_the_limit():
    with pytest.raises(ValidationError, match="At most 3"):
        validate_redirect_uris([f"https://a.example/{i}" for i in range(4)], limit=3)


@given(st.text())
def test_no_text_raises_anything_but_a_validation_error(uri):
    try:
        validate_redirect_uri(uri)
    except ValidationError:
        return
    # Whatever passes satisfies every rule.
    assert "*" not in uri and "#" not in uri and ":" in uri


@given(st.from_regex(r"\A(https?|javascript|data|file|[a-z][a-z0-9.+-]*):(//)?[^\s]*\Z"))
def test_uri_shaped_inputs_never_crash(uri):
    try:
        validate_redirect_uri(uri)
    except ValidationError:
        pass
