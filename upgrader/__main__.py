import sys

from upgrader.cli import main

sys.exit(main())
