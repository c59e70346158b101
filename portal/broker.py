"""kombu's filesystem transport (the embedded default broker), with messages written whole.

kombu creates a message file under its final name and then writes into it, while a consumer
takes any file with that name at once: a worker that polls in between reads an empty file and
dies on a JSONDecodeError (kombu issue #1551, open), and the message is lost. Seen in
benchmarks/soak.py within minutes, with beat every 5 s. Here the message is written under a
name consumers ignore and renamed into place, which is atomic within one folder.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        folder = self.data_folder_out
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"  # as kombu names it
        # A leading dot: kombu's _get matches on what follows the first dot, "<queue>.msg".
        partial = os.path.join(folder, f".{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(folder, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
