"""``python -m reference_app``: serve the app with several worker processes."""

import sys

from reference_app.server import main

sys.exit(main())
