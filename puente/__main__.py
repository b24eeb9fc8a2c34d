import sys

from puente.cli import main

sys.exit(main())
