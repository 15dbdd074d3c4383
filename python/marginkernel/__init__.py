"""marginkernel: portfolio margin, fast and exact.

Pipeline: instruments + market + scenarios -> revalue -> risk arrays R[i, s] -> net (positions)
-> scenario P&L per account -> reduce -> margin. See README.md for both API layers.
"""

from . import kernels, reference
from ._core import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "kernels", "reference", "__version__"]
