"""``python -m attquic._cli``: the attquic command line."""

import sys

from attquic._cli import main

sys.exit(main())
