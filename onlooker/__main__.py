import sys

from onlooker.cli import main

sys.exit(main())
