"""/sandbox/<provider-slug>/...: each emulated provider's endpoints, all with X-Request-Id.

Token paths come from the profiles, so urls_for() and the routes cannot drift apart.
"""

from django.http import JsonResponse
from django.urls import include, path, re_path

from sandbox.profiles import MANHATTAN_ACTIVE, MANITOU_GROUP, MANU_ONLINE, MANUS, PROFILES
from sandbox.views import api, authorize, control, token
from sandbox.views.common import with_request_id

app_name = "sandbox"


def not_found(request, profile):
    return JsonResponse({"error": "not_found"}, status=404)


# (path, view, name): each API view belongs to exactly one provider, so it takes no profile.
API_ROUTES = {
    MANU_ONLINE.key: [("me", api.manu_me, "me")],
    MANUS.key: [("v2/task.list", api.manus_task_list, "task-list")],
    MANHATTAN_ACTIVE.key: [
        (
            "organization/api/organization/user/allDetails/userId/<str:username>",
            api.manhattan_user_details,
            "user-details",
        )
    ],
    MANITOU_GROUP.key: [("v1/products", api.manitou_products, "products")],
}


def provider_routes(profile):
    def route(route_path, view, name):
        return path(route_path.lstrip("/"), with_request_id(view), {"profile": profile}, name=name)

    routes = [
        route(profile.paths["token_url"], token.token, "token"),
        route("_control/faults", control.fault_control, "faults"),
    ]
    if profile.paths.get("authorize_url"):
        routes += [
            route(profile.paths["authorize_url"], authorize.authorize, "authorize"),
            route("_authorize/<str:flow_id>", authorize.flow, "flow"),
        ]
    if profile.paths.get("revoke_url"):
        routes.append(route(profile.paths["revoke_url"], token.revoke, "revoke"))
    routes += [path(p, with_request_id(view), name=n) for p, view, n in API_ROUTES[profile.key]]
    routes.append(
        re_path(r"^.*$", with_request_id(not_found), {"profile": profile}, name="not-found")
    )
    return routes


urlpatterns = [path(f"{p.slug}/", include((provider_routes(p), p.slug))) for p in PROFILES.values()]
