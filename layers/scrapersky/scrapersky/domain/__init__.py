"""Pure domain logic: no AWS, no network, no environment reads."""
