import sys

from otel_autoheal.cli import main

sys.exit(main())
