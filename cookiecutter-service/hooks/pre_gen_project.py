"""Refuse answers the catalog would refuse, before any file is made, with the rule each one breaks."""

import re
import sys

from aiplatform.inputs.images import image_problem

answers = {
    "name": "{{ cookiecutter.name }}",
    "image": "{{ cookiecutter.image }}",
    "subdomain": "{{ cookiecutter.subdomain }}",
    "health_path": "{{ cookiecutter.health_path }}",
    "data_path": "{{ cookiecutter.data_path }}",
    "port": "{{ cookiecutter.port }}",
    "host_port": "{{ cookiecutter.host_port }}",
    "ip_port": "{{ cookiecutter.ip_port }}",
}
problems = []
if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", answers["name"]):
    problems.append("name: lower-case letters, digits and dashes, starting with a letter")
if not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?", answers["subdomain"]):
    problems.append("subdomain: one DNS label (lower-case letters, digits, dashes; no spaces or dots)")
problem = image_problem(answers["image"])
if problem:
    problems.append(f"image {answers['image']!r} {problem}")
for key in ("health_path", "data_path"):
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", answers[key]):
        problems.append(f"{key}: a path starting with / (letters, digits, . _ ~ / -)")
for key in ("port", "host_port", "ip_port"):
    if not answers[key].isdigit() or not 1 <= int(answers[key]) <= 65535:
        problems.append(f"{key}: a port number from 1 to 65535")
if problems:
    sys.stderr.write("cookiecutter-service: " + "; ".join(problems) + ". Nothing was made.\n")
    sys.exit(1)
