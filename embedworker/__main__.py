"""python -m embedworker"""

from embedworker.cli import main

raise SystemExit(main())
