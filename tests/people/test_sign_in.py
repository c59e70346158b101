"""Sign-in: throttled by username and by address on /login/ and /admin/login/ (django-axes),
with a clear message, an expiry and a command that lifts it; the TOTP second factor with
recovery codes, and the setting that requires it for admins."""

import base64
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.people import PASSWORD

LIMIT = 5


def sign_in(client, username, password, url="/login/"):
    return client.post(url, {"username": username, "password": password})


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_a_username_is_locked_after_the_limit_with_a_message_and_the_duration(client, alice, url, settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    for _ in range(LIMIT - 1):
        assert sign_in(client, "alice", "wrong", url).status_code == 200
    locked = sign_in(client, "alice", "wrong", url)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many wrong passwords" in text and "15 minutes" in text
    # the right password is refused while locked
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_an_address_is_locked_whatever_usernames_it_tries(client, alice, bob):
    for n in range(LIMIT):
        sign_in(client, f"nobody{n}", "wrong")
    assert sign_in(client, "bob", PASSWORD).status_code == 429
    other = client.__class__(REMOTE_ADDR="127.0.0.9")
    assert sign_in(other, "bob", PASSWORD).status_code == 302  # another address signs in


def test_a_lockout_ends_after_the_cool_off_and_the_command_lifts_it(client, alice):
    for _ in range(LIMIT):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT):
        sign_in(client, "alice", "wrong")
    call_command("axes_reset_username", "alice")
    call_command("axes_reset_ip", "127.0.0.1")
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def code(device, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):0{device.digits}d}"


def enrol(client) -> TOTPDevice:
    page = client.get(reverse("otp_setup")).content.decode()
    device = TOTPDevice.objects.get(confirmed=False)
    assert base64.b32encode(device.bin_key).decode() in page and "<svg" in page
    done = client.post(reverse("otp_setup"), {"code": code(device)})
    assert done.status_code == 302 and done["Location"] == reverse("otp_recovery")
    return TOTPDevice.objects.get(pk=device.pk)


def test_totp_enrolment_then_sign_in_needs_a_code_and_a_recovery_code_works_once(
    client, alice, settings
):
    # django-otp makes a device wait after each wrong code (2^n s); this test tries a wrong
    # one on purpose and then the right one at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    sign_in(client, "alice", PASSWORD)
    device = enrol(client)
    assert device.confirmed
    codes = client.get(reverse("otp_recovery")).context["codes"]
    assert len(codes) == 10
    client.logout()

    sign_in(client, "alice", PASSWORD)
    dashboard = reverse("dashboard", args=["acme"])
    blocked = client.get(dashboard)
    assert blocked.status_code == 302 and blocked["Location"].startswith(reverse("otp_verify"))
    assert client.post(reverse("otp_verify"), {"code": "000000"}).status_code == 200
    ok = client.post(reverse("otp_verify"), {"code": code(device, drift=1), "next": dashboard})
    assert ok.status_code == 302 and ok["Location"] == dashboard
    assert client.get(dashboard).status_code == 200
    client.logout()

    sign_in(client, "alice", PASSWORD)
    assert client.post(reverse("otp_verify"), {"code": codes[0], "next": dashboard})["Location"] == dashboard
    client.logout()
    sign_in(client, "alice", PASSWORD)
    assert client.post(reverse("otp_verify"), {"code": codes[0]}).status_code == 200  # used up
    assert client.get(dashboard).status_code == 302


def test_admins_must_enrol_when_the_setting_says_so(client, alice, bob, settings):
    settings.REQUIRE_TOTP_FOR_ADMINS = True
    sign_in(client, "alice", PASSWORD)
    response = client.get(reverse("dashboard", args=["acme"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("otp_setup"))
    enrol(client)
    assert client.get(reverse("dashboard", args=["acme"])).status_code == 200
    member = client.__class__()
    sign_in(member, "bob", PASSWORD)
    assert member.get(reverse("dashboard", args=["acme"])).status_code == 200  # not an admin


def test_staff_must_enrol_too_when_admins_must(client, olive, settings):
    settings.REQUIRE_TOTP_FOR_ADMINS = True
    type(olive).objects.filter(pk=olive.pk).update(is_staff=True)
    sign_in(client, "olive", PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("otp_setup"))
