"""``python -m fanout.cli``: the ``fanout`` command."""

import sys

from fanout.cli.main import main

sys.exit(main())
