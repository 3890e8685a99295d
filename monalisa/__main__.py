import sys

from monalisa.cli import main

sys.exit(main())
