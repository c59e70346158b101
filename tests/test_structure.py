"""Rules the code keeps by structure, not by habit: connections.lifecycle is the one owner of
a connection's state, reached only through its public names."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIFECYCLE = ROOT / "connections" / "lifecycle"
PRODUCT = [ROOT / "connections", ROOT / "portal", ROOT / "sandbox"]
STATE = {
    "access_token",
    "refresh_token",
    "refresh_token_hash",
    "access_expires_at",
    "refresh_expires_at",
    "status",
    "next_refresh_at",
    "refresh_enqueued_at",
    "revoke_retry_at",
    "lease_owner",
    "lease_expires_at",
    "inflight_refresh_hash",
    "version",
}


def product_modules():
    for folder in PRODUCT:
        for path in folder.rglob("*.py"):
            if LIFECYCLE in path.parents or "migrations" in path.parts:
                continue
            yield path, ast.parse(path.read_text(), filename=str(path))


def test_only_the_public_surface_of_the_lifecycle_is_imported_outside_it():
    offenders = []
    for path, tree in product_modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                module = name.split(".")
                if module[:2] == ["connections", "lifecycle"] and len(module) > 2:
                    if (LIFECYCLE / f"{module[2]}.py").exists():
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not offenders, offenders


def _receiver(call: ast.Call) -> str:
    return ast.unparse(call.func.value) if isinstance(call.func, ast.Attribute) else ""


def test_no_connection_state_is_written_outside_the_lifecycle():
    offenders = []
    for path, tree in product_modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            receiver = _receiver(node)
            about_connections = "Connection.objects" in receiver or "connections" in receiver
            written = {k.arg for k in node.keywords} & STATE
            if node.func.attr in ("update", "create") and about_connections and written:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(written)}")
            if node.func.attr == "save" and ("conn" in receiver.lower()):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {receiver}.save()")
    assert not offenders, offenders


VIEWS = [*(ROOT / "connections" / "views").glob("*.py"), ROOT / "portal" / "views.py"]
# The tenancy helpers: the only places that look a tenant's objects up by id.
LOOKUPS = {"get_object_or_404", "get_in_tenant"}


def test_views_load_tenant_objects_only_through_the_tenancy_helpers():
    """A view that looks an object up itself can forget the tenant; the getters of
    connections.lookups and portal.tenancy cannot (their tenant is not optional)."""
    offenders = []
    for path in VIEWS:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else ""
            direct_get = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and ".objects" in ast.unparse(func.value)
            )
            if name in LOOKUPS or direct_get:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(func)}")
    assert not offenders, offenders


def _provider_keys() -> set[str]:
    from connections.providers import PROVIDERS

    return set(PROVIDERS)


def test_no_code_compares_a_provider_key_to_a_literal():
    """Providers are data: a difference between them is a field of the catalogue, which the
    code reads, never `provider.key == "manu_online"`."""
    keys = _provider_keys()
    offenders = []
    providers_module = ROOT / "connections" / "providers.py"
    for path, tree in product_modules():
        if path == providers_module:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            literals = set()
            for part in parts:
                elements = part.elts if isinstance(part, ast.Tuple | ast.List | ast.Set) else [part]
                literals |= {
                    e.value for e in elements if isinstance(e, ast.Constant) and e.value in keys
                }
                # MANU_ONLINE.key and the like: a literal by another name
                literals |= {
                    ast.unparse(e)
                    for e in elements
                    if isinstance(e, ast.Attribute)
                    and e.attr == "key"
                    and isinstance(e.value, ast.Name)
                    and e.value.id.isupper()
                }
            if literals:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    alternatives = "|".join(sorted(keys))
    template_compare = re.compile(r"""(==|!=|\bin)\s*["'](""" + alternatives + r""")["']""")
    for path in (ROOT / "templates").rglob("*.html"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if template_compare.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno} {line.strip()[:80]}")
    assert not offenders, offenders


EGRESS = ROOT / "connections" / "egress.py"
HTTP_CLIENTS = {"urllib.request", "http.client", "httpx", "urllib3", "aiohttp"}
SENDING = {"get", "post", "put", "patch", "delete", "head", "options", "request", "Session"}


def test_only_the_egress_path_sends_requests_on_a_tenants_behalf():
    """Provider calls and webhook deliveries alike go through connections.egress (https,
    public addresses, no redirects, one deadline): no other product module opens a
    connection or sends with requests itself. The sandbox plays the providers and is not
    the portal."""
    offenders = []
    for path, tree in product_modules():
        if path == EGRESS or (ROOT / "sandbox") in path.parents:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                bad = {n for n in names if n.split(".")[0] in HTTP_CLIENTS or n in HTTP_CLIENTS}
                if bad:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {bad}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "requests"
                and node.attr in SENDING
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} requests.{node.attr}")
    for path in LIFECYCLE.glob("*.py"):  # the lifecycle calls providers through oauth/egress
        text = path.read_text()
        if re.search(r"\brequests\.(get|post|request|Session)\b", text):
            offenders.append(f"{path.relative_to(ROOT)} sends with requests")
    assert not offenders, offenders
