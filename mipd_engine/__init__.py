"""mipd_engine: the numerical engine of mipd-web.

Pure Python (numpy, scipy); it never imports Django, DRF or Celery. It reads population model files
(``mipd-model/1``, see docs in the repository), simulates concentrations, estimates individual parameters
from drug levels (MAP and full posterior) and proposes regimens.
"""

__version__ = "0.1.0"
ENGINE_VERSION = __version__
