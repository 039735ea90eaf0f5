"""``python -m isolation_harness.reference_app``: serve the app with several worker processes."""

import sys

from isolation_harness.reference_app.server import main

sys.exit(main())
