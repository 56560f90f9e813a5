"""``python -m modules.host``: see ``modules.host``."""

import sys

from modules.host.server import main

sys.exit(main())
