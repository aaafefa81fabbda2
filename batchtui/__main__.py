import sys

from batchtui.cli.main import main

sys.exit(main())
