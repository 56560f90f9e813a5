"""The embedded Celery broker: kombu's filesystem transport, whose folders are made when a channel first opens.

Settings only name the folders (importing settings writes nothing); the first process that publishes or consumes
creates them, so web, worker and beat may start in any order on a fresh AION_VAR_DIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kombu.transport import filesystem


class Channel(filesystem.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for folder in (self.data_folder_in, self.data_folder_out, self.processed_folder, self.control_folder):
            Path(folder).mkdir(parents=True, exist_ok=True)


class Transport(filesystem.Transport):
    Channel = Channel
