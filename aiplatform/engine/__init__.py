"""The Docker engine: the compose project generated/ defines, deploy, status and cleanup."""
