import pytest


@pytest.fixture
def mail_inline(monkeypatch):
    """Run the e-mail tasks queued on commit right away, in this process (mail.outbox)."""
    from portal.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
