"""The browser side of the authorization-code providers: authorize request, login, account
picker (Manu Online), consent with Grant / Deny, then the redirect back with a code.

The flow lives in request.session under SESSION_KEY only; it never logs anyone into the
portal (no django.contrib.auth call), even though it shares the portal's session cookie.
"""

import re
import secrets
import time
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from sandbox.grants import new_code
from sandbox.models import Client, SandboxUser
from sandbox.profiles import Profile, base_path

SESSION_KEY = "sandbox_authorize"
FLOW_TTL = 30 * 60
MAX_FLOWS = 10
# RFC 7636 §4.2: a S256 challenge is 43 base64url characters; allow the full verifier range.
CHALLENGE = re.compile(r"^[A-Za-z0-9_~.-]{43,128}$")


class Refused(Exception):
    """The request cannot be trusted to redirect back: show an error page instead."""


def redirect_to(uri: str, params: dict) -> HttpResponse:
    """A 302 that also allows native-app schemes (com.example.app://), which Django's
    HttpResponseRedirect refuses."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    response = HttpResponse(status=302)
    response["Location"] = uri + ("&" if "?" in uri else "?") + query if query else uri
    return response


def error_page(request, profile: Profile, message: str, status: int = 400) -> HttpResponse:
    return render(
        request, "sandbox/error.html", {"profile": profile, "message": message}, status=status
    )


def issuer(request, profile: Profile) -> str:
    # The host the browser used, so it equals urls_for(provider, that base)["issuer"].
    return request.build_absolute_uri(base_path(profile.key))


def flows(request) -> dict:
    now = time.time()
    stored = request.session.get(SESSION_KEY, {})
    return {k: v for k, v in stored.items() if now - v.get("created", 0) < FLOW_TTL}


def save_flows(request, data: dict) -> None:
    newest = sorted(data.items(), key=lambda kv: kv[1]["created"])[-MAX_FLOWS:]
    request.session[SESSION_KEY] = dict(newest)


def authorize(request, profile: Profile):
    """GET the authorize URL: check client and redirect_uri (else an error page), then the
    other parameters (else a redirect with an error), then start a flow and show the login."""
    query = request.GET
    if any("\x00" in v for _name, vals in query.lists() for v in vals):
        return error_page(request, profile, "The authorization request is malformed.")
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    client = Client.objects.filter(provider=profile.key, client_id=client_id[:255]).first()
    if client is None:
        return error_page(request, profile, "Unknown client_id.")
    if redirect_uri not in client.redirect_uris:
        # Matched exactly (RFC 6749 §3.1.2); never redirect to an unregistered URI.
        return error_page(request, profile, "The redirect_uri is not registered for this app.")
    state, iss = query.get("state"), issuer(request, profile)

    def refuse(error: str, description: str) -> HttpResponse:
        return redirect_to(
            redirect_uri,
            {"error": error, "error_description": description, "state": state, "iss": iss},
        )

    response_type = query.get("response_type")
    if response_type != "code" and (response_type or profile.requires_response_type):
        return refuse("unsupported_response_type", "response_type must be code")
    scopes = profile.split_scopes(query.get("scope", "")) or list(client.scopes)
    unknown = [s for s in scopes if s not in client.scopes]
    if unknown:
        return refuse("invalid_scope", f"scope not configured on the app: {', '.join(unknown)}")
    challenge = ""
    if profile.pkce:
        challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method")
        if (challenge or method) and method != "S256":
            return refuse("invalid_request", "code_challenge_method must be S256")
        if method and not CHALLENGE.match(challenge):
            return refuse("invalid_request", "code_challenge is malformed")
    flow_id = secrets.token_urlsafe(16)
    data = flows(request)
    data[flow_id] = {
        "provider": profile.key,
        "client": client.pk,
        "redirect_uri": redirect_uri,
        "state": state,
        "iss": iss,
        "scopes": scopes,
        "challenge": challenge,
        "step": "login",
        "created": time.time(),
    }
    save_flows(request, data)
    return redirect_to(reverse(f"sandbox:{profile.slug}:flow", args=[flow_id]), {})


def flow(request, profile: Profile, flow_id: str):
    data = flows(request)
    state = data.get(flow_id)
    if state is None or state["provider"] != profile.key:
        return error_page(request, profile, "This sign-in has expired. Start again from the app.")
    client = Client.objects.filter(pk=state["client"]).first()
    if client is None:
        return error_page(request, profile, "The app no longer exists.")
    ctx = {"profile": profile, "client": client, "flow": state}
    if request.method == "POST":
        outcome = STEPS[state["step"]](request, profile, client, state, ctx)
        if outcome is not None and outcome.status_code == 302:
            del data[flow_id]  # back at the app: the flow is over
        save_flows(request, data)
        if outcome is not None:
            return outcome
    if state["step"] == "account":
        ctx["accounts"] = eligible_accounts(state, client)
    return render(request, f"sandbox/{state['step']}.html", ctx)


def eligible_accounts(state: dict, client: Client) -> list[dict]:
    """Only the app's listed account ids are offered (seed 000)."""
    user = SandboxUser.objects.filter(pk=state.get("user")).first()
    accounts = user.accounts if user else []
    return [a for a in accounts if str(a.get("id")) in client.account_ids]


def login_step(request, profile, client, state, ctx):
    username = request.POST.get("username", "")[:150]
    # NUL cannot reach a PostgreSQL query; no user has one in their name.
    user = (
        None
        if "\x00" in username
        else SandboxUser.objects.filter(provider=profile.key, username=username).first()
    )
    if user is None or not user.check_password(request.POST.get("password", "")):
        ctx["error"] = "Invalid username or password."
        return None
    state["user"] = user.pk
    if not profile.has_accounts:
        state["step"] = "consent"
        return None
    accounts = eligible_accounts(state, client)
    if not accounts:
        return error_page(
            request,
            profile,
            "This user cannot use any of the accounts this app is set up for.",
            403,
        )
    if len(accounts) == 1:
        pick_account(state, accounts[0])
    else:
        state["step"] = "account"
    return None


def pick_account(state: dict, account: dict) -> None:
    state["account"] = {"id": str(account["id"]), "name": str(account.get("name", ""))}
    state["step"] = "consent"


def account_step(request, profile, client, state, ctx):
    chosen = request.POST.get("account", "")
    for account in eligible_accounts(state, client):
        if str(account["id"]) == chosen:
            pick_account(state, account)
            return None
    ctx["error"] = "Choose one of the listed accounts."
    return None


def consent_step(request, profile, client, state, ctx):
    back = {"state": state["state"], "iss": state["iss"]}
    if request.POST.get("decision") != "grant":
        return redirect_to(state["redirect_uri"], {"error": "access_denied", **back})
    user = SandboxUser.objects.filter(pk=state.get("user")).first()
    if user is None:
        return error_page(request, profile, "The user no longer exists.")
    account = state.get("account") or {}
    code = new_code(
        profile,
        client,
        user=user,
        redirect_uri=state["redirect_uri"],
        scopes=state["scopes"],
        account_id=account.get("id", ""),
        account_name=account.get("name", ""),
        code_challenge=state["challenge"],
    )
    return redirect_to(state["redirect_uri"], {"code": code, **back})


STEPS = {"login": login_step, "account": account_step, "consent": consent_step}
