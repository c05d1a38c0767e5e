"""Stand-ins for services the unit tests talk to over real sockets (each module says what it stands in for)."""
