"""Value objects and enums. Depends on the standard library only."""
