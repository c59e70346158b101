"""HTTP control of fault injection, for scripts: POST adds a fault, DELETE clears them.

Only mounted when SANDBOX_ENABLED (the whole sandbox is), and checked again here.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import faults
from sandbox.profiles import Profile

FIELDS = {
    "client_id": str,
    "kind": str,
    "count": int,
    "status": int,
    "retry_after": int,
    "latency_ms": int,
}


@csrf_exempt
def fault_control(request, profile: Profile):
    if not settings.SANDBOX_ENABLED:
        return JsonResponse({"error": "not_found"}, status=404)
    if request.method == "DELETE":
        client_id = request.GET.get("client_id", "").replace("\x00", "") or None
        return JsonResponse({"cleared": faults.clear(provider=profile.key, client_id=client_id)})
    if request.method != "POST":
        return JsonResponse(
            {"error": "invalid_request"}, status=405, headers={"Allow": "POST, DELETE"}
        )
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict) or not isinstance(body.get("client_id"), str):
            raise ValueError("client_id (a string) and kind are required")
        if "\x00" in body["client_id"]:
            raise ValueError("client_id is malformed")
        kwargs = {k: FIELDS[k](v) for k, v in body.items() if k in FIELDS}
        if body.get("clear"):
            cleared = faults.clear(provider=profile.key, client_id=kwargs["client_id"])
            return JsonResponse({"cleared": cleared})
        fault = faults.inject(provider=profile.key, **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        return JsonResponse({"error": "invalid_request", "error_description": str(exc)}, status=400)
    return JsonResponse(
        {"id": fault.pk, "kind": fault.kind, "remaining": fault.remaining}, status=201
    )
