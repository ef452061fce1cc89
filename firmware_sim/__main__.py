"""python -m firmware_sim SCENARIO --seed N --out DIR [--duration S] [--trucks N] | --list"""

import sys

from firmware_sim.cli import main

sys.exit(main())
