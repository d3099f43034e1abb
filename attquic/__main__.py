"""``python -m attquic``: the attquic command line."""

import sys

from attquic._cli import main

sys.exit(main())
