"""``python -m sapbert_st.cli``: the same as the ``sapbert-st`` console script."""

import sys

from sapbert_st.cli import main

sys.exit(main())
