"""The Kubernetes (k3s) target: the same catalog and settings rendered as a kustomize tree under generated/k8s/."""
