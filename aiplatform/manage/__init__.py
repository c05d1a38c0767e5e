"""Which services run: add one (from the catalog, a compose file or the template), remove one."""
