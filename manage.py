#!/usr/bin/env python
import os
import sys

# Commands that need no settings: production settings refuse to load without
# FIELD_ENCRYPTION_KEYS, and making the first key is exactly when an operator runs this.
SETTINGS_FREE = {"generate_field_key"}

if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1] in SETTINGS_FREE:
        from portal.keys import main

        sys.exit(main(sys.argv[2:], prog=f"manage.py {sys.argv[1]}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
