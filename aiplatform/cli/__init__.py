"""What the tasks print and ask: the consoles, tables and summaries, and the questions at a terminal."""
