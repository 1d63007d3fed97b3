import sys

from maag.cli import main

sys.exit(main())
