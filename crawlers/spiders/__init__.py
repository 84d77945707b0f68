"""One spider per source type; each spider's `name` equals its config `type`."""
