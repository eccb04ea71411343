"""python -m embedworker.standin"""

import sys

from embedworker.standin.cli import main

sys.exit(main())
