import sys

from include.matcher.cli import main

sys.exit(main())
