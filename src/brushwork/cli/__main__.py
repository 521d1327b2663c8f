"""``python -m brushwork.cli``: the ``brushwork`` command."""

import sys

from brushwork.cli import main

sys.exit(main())
