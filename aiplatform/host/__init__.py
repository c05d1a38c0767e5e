"""The host: the one runner of commands and writer of files, and setup, Ollama and the read-only checks."""
