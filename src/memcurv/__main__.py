import sys

from memcurv.cli import main

sys.exit(main())
