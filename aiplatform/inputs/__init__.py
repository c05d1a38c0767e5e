"""Everything render reads: settings and their sources, tier profiles, the hardware, the service catalog and secrets."""
