"""generated/ on disk: the render command that fills it, its atomic write, stamp and diff against the root."""
