"""Each provider's test endpoint, answering only to a live token from that provider."""

from django.http import JsonResponse

from sandbox.models import Client, matches_any
from sandbox.profiles import MANHATTAN_ACTIVE, MANITOU_GROUP, MANU_ONLINE, MANUS
from sandbox.views.common import bearer_token, unauthorized

TASK_SCOPES = {"create_task", "manage_all_tasks"}  # seed 003: task.list needs one of these


def manu_me(request):
    """Seed 000: /me returns the authenticated user name (and here the chosen account)."""
    token = bearer_token(request, MANU_ONLINE)
    if token is None:
        return unauthorized()
    return JsonResponse(
        {
            "username": token.user.username,
            "account_id": token.account_id,
            "account_name": token.account_name,
        }
    )


def manus_task_list(request):
    token = bearer_token(request, MANUS)
    if token is None:
        return unauthorized()
    if not TASK_SCOPES & set(token.scopes):
        return JsonResponse(
            {
                "code": "permission_denied",
                "message": "insufficient_scope: required one of [create_task, manage_all_tasks]",
            },
            status=403,
        )
    tasks = [{"id": "task_sandbox_1", "title": "Sandbox task", "status": "completed"}]
    return JsonResponse({"ok": True, "data": tasks, "user": token.user.username})


def manhattan_user_details(request, username: str):
    """Seed 002: details of the authenticated user; another user's are not visible."""
    token = bearer_token(request, MANHATTAN_ACTIVE)
    if token is None:
        return unauthorized()
    if token.user is None or token.user.username != username:
        return JsonResponse(
            {"error": "forbidden", "error_description": "only the token's own user"}, status=403
        )
    return JsonResponse(
        {
            "data": {
                "UserId": username,
                "FirstName": "Sandbox",
                "LastName": "User",
                "Email": f"{username}@sandbox.invalid",
                "OrgId": "SANDBOX-ORG",
                "Roles": ["API_USER"],
            },
            "success": True,
        }
    )


PRODUCTS = [
    {"id": "MT-625", "name": "MT 625 H", "family": "Telehandler"},
    {"id": "MRT-2660", "name": "MRT 2660 Vision+", "family": "Rotating telehandler"},
    {"id": "ME-320", "name": "ME 320", "family": "Electric forklift"},
]


def manitou_products(request):
    """Seed 004: a Bearer token with the Products scope, or a subscription key header."""
    token = bearer_token(request, MANITOU_GROUP)
    if token is not None and "Products" in token.scopes:
        return JsonResponse(PRODUCTS, safe=False)
    key = request.headers.get("Ocp-Apim-Subscription-Key")
    if key and "\x00" not in key:
        for hashes in Client.objects.filter(provider=MANITOU_GROUP.key).values_list(
            "subscription_key_hashes", flat=True
        ):
            if matches_any(key, hashes):
                return JsonResponse(PRODUCTS, safe=False)
    return unauthorized("a valid Bearer token or Ocp-Apim-Subscription-Key is required")
