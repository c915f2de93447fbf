"""The converter: validate (sites), calibrate (observers), replace (methods), simulate (engine)."""
