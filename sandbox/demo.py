def create_demo_apps(*, tenant, user) -> list:
    return []
