"""The converter: validate (sites), calibrate (observers), replace (methods), simulate (engine).

Importing the package registers the built-in methods (:mod:`.methods`, :mod:`.signed_methods`)
in the registry (:mod:`.registry`)."""
from . import methods, signed_methods  # noqa: F401  (their methods register themselves)
