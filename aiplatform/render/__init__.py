"""The pure renderer: settings, catalog, hardware and secrets in, the platform tree ({path: file}) out."""
