"""Rules the code keeps by structure, not by habit: connections.lifecycle is the one owner of
a connection's state, reached only through its public names."""

import ast
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
