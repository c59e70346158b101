"""The embedded broker (portal.broker): a consumer never takes a message before it is whole."""

from queue import Empty

import kombu
import pytest
from kombu.transport import filesystem

from portal import broker


@pytest.mark.parametrize(
    ("transport", "module"),
    [
        ("portal.broker:Transport", broker),
        pytest.param(
            "filesystem",
            filesystem,
            marks=pytest.mark.xfail(
                strict=True, reason="kombu issue #1551: the race this module closes"
            ),
        ),
    ],
)
def test_a_consumer_polling_while_a_message_is_written_finds_nothing(
    tmp_path, monkeypatch, transport, module
):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    producer = kombu.Connection("filesystem://", transport=transport, transport_options=options)
    consumer = kombu.Connection("filesystem://", transport=transport, transport_options=options)
    real_dumps, polled = module.dumps, []

    def dumps_while_a_worker_polls(payload):
        # The payload is serialised once the file is open: poll in exactly that window.
        try:
            polled.append(consumer.default_channel._get("q"))
        except Empty:
            polled.append("nothing")
        return real_dumps(payload)

    monkeypatch.setattr(module, "dumps", dumps_while_a_worker_polls)
    producer.default_channel._put("q", {"n": 1})

    assert polled == ["nothing"]
    assert consumer.default_channel._get("q") == {"n": 1}
    producer.release()
    consumer.release()
