"""Search spaces as Ray Tune sampling domains.  Importing this package registers the
built-in spaces, so ``get_space(name)`` finds them; ``FunctionSpace`` makes one from a
user's own model function.

Importing the package needs neither torch nor Ray Tune (the networks and Tune's domains
are imported when first built), so the CLI checks a space in the driver at once."""
from search_spaces.base import SearchSpace, as_rng, check_choice
from search_spaces.registry import (
    as_space,
    available_spaces,
    get_space,
    register_instance,
    register_space,
    space_listing,
)
from search_spaces import nb201  # noqa: F401  (registers "nb201")
from search_spaces import darts  # noqa: F401  (registers "darts")
from search_spaces import darts_edges  # noqa: F401  (registers "darts-edges")
from search_spaces import darts_csnas  # noqa: F401  (registers "darts-csnas")
from search_spaces import nb101  # noqa: F401  (registers "nb101")
from search_spaces import mobilenetv3  # noqa: F401  (registers "mobilenetv3")
from search_spaces import nago  # noqa: F401  (registers "nago")
from search_spaces.function_space import FunctionSpace, function_space

__all__ = [
    "FunctionSpace",
    "SearchSpace",
    "as_rng",
    "as_space",
    "available_spaces",
    "check_choice",
    "function_space",
    "get_space",
    "register_instance",
    "register_space",
    "space_listing",
]

