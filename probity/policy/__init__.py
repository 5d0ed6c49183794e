"""Pure decision functions over domain data: no I/O, no clock reads (time is passed in)."""
