"""Search spaces as Ray Tune sampling domains.  Importing this package registers the
built-in spaces, so ``get_space(name)`` finds them."""
from search_spaces.base import SearchSpace, as_rng, check_choice
from search_spaces.registry import as_space, available_spaces, get_space, register_space
from search_spaces import nb201  # noqa: F401  (registers "nb201")
from search_spaces import darts  # noqa: F401  (registers "darts")
from search_spaces import darts_edges  # noqa: F401  (registers "darts-edges")
from search_spaces import nb101  # noqa: F401  (registers "nb101")
from search_spaces import mobilenetv3  # noqa: F401  (registers "mobilenetv3")
from search_spaces import nago  # noqa: F401  (registers "nago")

__all__ = [
    "SearchSpace",
    "as_rng",
    "as_space",
    "available_spaces",
    "check_choice",
    "get_space",
    "register_space",
]
