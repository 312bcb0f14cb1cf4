"""The embedded broker (``filesystem://``) with message files that appear whole.

kombu's filesystem transport creates a message file and then writes into it. A worker polling the
folder at that moment moves the still-empty file away, fails to decode it and its consumer dies
(``JSONDecodeError: Expecting value``), leaving the import it was meant to start queued forever.
Here a message is written under a name the reader skips and renamed into place, which is atomic
on one filesystem. ``mlportal/celery.py`` points the ``filesystem`` alias at this transport.
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
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # The reader takes files whose name after the first dot is "<queue>.msg": ".…msg.part" is not one.
        part = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(part, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(part, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
