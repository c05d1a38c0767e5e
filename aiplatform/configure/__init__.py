"""configure: finish every running service through its own HTTP API (accounts, keys, model connections), prove a
chat goes through LiteLLM to Ollama, and tell where everything is (`inv info`). Each step checks first."""
