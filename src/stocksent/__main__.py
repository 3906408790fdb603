import sys

from stocksent.cli import main

sys.exit(main())
