"""``python -m platform_tools.services.accounting [--kubernetes]``."""

import sys

from platform_tools.services.accounting.factory import main

sys.exit(main())
