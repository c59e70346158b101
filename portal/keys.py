"""A new key for FIELD_ENCRYPTION_KEYS, made without Django settings.

Production settings refuse to load without FIELD_ENCRYPTION_KEYS, and the operator needs a key
exactly then, so `manage.py generate_field_key` runs this before anything loads settings
(manage.py); `python -m portal.keys` does the same.
"""

import argparse

from cryptography.fernet import Fernet

HELP = "Print a new key for FIELD_ENCRYPTION_KEYS (put it first; keep old keys after it)."


def new_field_key() -> str:
    return Fernet.generate_key().decode()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argparse.ArgumentParser(prog=prog, description=HELP).parse_args(argv)
    print(new_field_key())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m portal.keys"))
