"""Invitations: sent after commit, accepted once by the invited address, expired, reused,
accepted by the wrong account, withdrawn; the Members page's rules and its isolation."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from connections import people
from connections.models import AuditEvent
from portal.models import Invitation, Membership
from tests import factories

Role = Membership.Role
pytestmark = pytest.mark.django_db(transaction=True)


def invite(client, email="new@acme.test", role="ops"):
    return client.post(reverse("members", args=["acme"]), {"email": email, "role": role})


def link_in_last_mail() -> str:
    return re.search(r"http\S+/invite/\S+/", mail.outbox[-1].body).group(0)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_an_admin_invites_and_a_new_person_joins_with_a_password(
    login, alice, client, tasks_inline
):
    response = invite(login(alice))
    assert response.status_code == 302
    [sent] = mail.outbox
    assert sent.to == ["new@acme.test"] and "Acme" in sent.subject
    link = path_of(link_in_last_mail())
    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and 'data-testid="new-account"' in page.content.decode()
    done = client.post(link, {"name": "Nina Ops", "username": "nina", "password1": "a long pass phrase 42", "password2": "a long pass phrase 42"})
    assert done.status_code == 302 and done["Location"] == reverse("dashboard", args=["acme"])
    nina = get_user_model().objects.get(username="nina")
    assert nina.email == "new@acme.test" and nina.first_name == "Nina"
    assert Membership.objects.get(user=nina).role == Role.OPS
    assert client.get(reverse("expiry_report", args=["acme"])).status_code == 200  # signed in
    kinds = set(AuditEvent.objects.values_list("kind", flat=True))
    assert {"member_invited", "member_joined"} <= kinds
    # used: the same link again is refused
    client.logout()
    again = client.get(link)
    assert again.status_code == 410 and "already been used" in again.content.decode()


def test_an_existing_account_with_the_invited_address_accepts_after_signing_in(acme, globex, carol, login):
    carol.email = "carol@globex.test"
    carol.save()
    issued = people.invitation_create(tenant=acme, email="Carol@Globex.test", role="member", actor=None, send=False)
    anonymous = login(carol).__class__()
    page = anonymous.get(path_of(issued.url)).content.decode()
    assert "Sign in" in page and "new-account" not in page
    client = login(carol)
    assert client.post(path_of(issued.url)).status_code == 302
    assert Membership.objects.get(user=carol, tenant=acme).role == Role.MEMBER


def test_the_wrong_account_cannot_accept(acme, bob, login):
    bob.email = "bob@acme.test"
    bob.save()
    issued = people.invitation_create(tenant=acme, email="someone@else.test", role="admin", actor=None, send=False)
    client = login(bob)
    page = client.get(path_of(issued.url)).content.decode()
    assert "this invitation is for someone@else.test" in page
    client.post(path_of(issued.url))
    assert Membership.objects.get(user=bob, tenant=acme).role == Role.MEMBER  # unchanged
    assert Invitation.objects.get().accepted_at is None


def test_expired_and_withdrawn_links_are_refused(acme, alice, login, client):
    expired = people.invitation_create(tenant=acme, email="a@x.test", role="member", actor=None, send=False)
    Invitation.objects.filter(pk=expired.invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    withdrawn = people.invitation_create(tenant=acme, email="b@x.test", role="member", actor=None, send=False)
    admin = login(alice)
    admin.post(reverse("invitation_revoke", args=["acme", withdrawn.invitation.pk]))
    client.logout()
    assert "expired" in client.get(path_of(expired.url)).content.decode()
    gone = client.get(path_of(withdrawn.url))
    assert gone.status_code == 410 and "withdrawn" in gone.content.decode()
    assert client.get("/invite/not-a-token/").status_code == 410
    post = client.post(path_of(expired.url), {"username": "x", "password1": "a long pass phrase 42", "password2": "a long pass phrase 42"})
    assert post.status_code == 410 and not get_user_model().objects.filter(username="x").exists()


def test_pending_invitations_are_listed_and_inviting_a_member_is_an_error(alice, bob, login):
    bob.email = "bob@acme.test"
    bob.save()
    client = login(alice)
    invite(client, "pending@acme.test", "member")
    page = client.get(reverse("members", args=["acme"])).content.decode()
    assert "pending@acme.test" in page and 'data-testid="invitation-row"' in page
    again = invite(client, "BOB@acme.test", "member")
    assert again.status_code == 400 and "already a member" in again.content.decode()


def test_the_last_admin_can_be_neither_demoted_nor_removed(acme, alice, login):
    client = login(alice)
    mine = Membership.objects.get(user=alice)
    client.post(reverse("member_role", args=["acme", mine.pk]), {"role": "ops"})
    assert Membership.objects.get(pk=mine.pk).role == Role.ADMIN
    client.post(reverse("member_remove", args=["acme", mine.pk]))
    assert Membership.objects.filter(pk=mine.pk).exists()
    # with a second admin, both work
    second = factories.member(acme, "dora", Role.ADMIN)
    client.post(reverse("member_role", args=["acme", mine.pk]), {"role": "ops"})
    assert Membership.objects.get(pk=mine.pk).role == Role.OPS
    assert AuditEvent.objects.filter(kind="role_changed", actor=alice).exists()
    assert second


def test_a_role_change_takes_effect_at_the_next_request(acme, alice, bob, login):
    bob_client = login(bob)
    members = reverse("members", args=["acme"])
    assert bob_client.get(members).status_code == 403
    membership = Membership.objects.get(user=bob)
    login(alice).post(reverse("member_role", args=["acme", membership.pk]), {"role": "admin"})
    assert login(bob).get(members).status_code == 200
    login(alice).post(reverse("member_remove", args=["acme", membership.pk]))
    assert login(bob).get(reverse("dashboard", args=["acme"])).status_code == 404


def test_members_urls_are_admin_only_and_another_tenants_objects_are_404(acme, globex, alice, olive, carol, login):
    theirs = Membership.objects.get(user=carol)
    invitation = people.invitation_create(tenant=globex, email="x@globex.test", role="member", actor=None, send=False).invitation
    client = login(alice)
    assert client.post(reverse("member_role", args=["acme", theirs.pk]), {"role": "ops"}).status_code == 404
    assert client.post(reverse("member_remove", args=["acme", theirs.pk])).status_code == 404
    assert client.post(reverse("invitation_revoke", args=["acme", invitation.pk])).status_code == 404
    assert client.get(reverse("members", args=["globex"])).status_code == 404
    assert login(olive).get(reverse("members", args=["acme"])).status_code == 403
    assert Membership.objects.get(pk=theirs.pk).role == Role.ADMIN


def test_an_invitation_never_changes_an_existing_members_role(acme, alice, login):
    alice.email = "alice@acme.test"
    alice.save()
    issued = people.invitation_create(tenant=acme, email="other@acme.test", role="member", actor=None, send=False)
    type(alice).objects.filter(pk=alice.pk).update(email="other@acme.test")  # address changed since
    login(alice).post(path_of(issued.url))
    assert Membership.objects.get(user=alice, tenant=acme).role == Role.ADMIN
    assert Invitation.objects.get().accepted_at is None
