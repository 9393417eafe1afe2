"""Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine runs here, so ``docker build`` and ``docker compose
config`` cannot run. These tests read the files instead. They also run
the parts that work without a container: the health check commands and
the local profile's set-up script.
"""

from __future__ import annotations

import ast
import fnmatch
import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from devstack.aws_endpoint import client_environment
from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
# SHUTDOWN_TIMEOUT + POLL_WAIT_SECONDS with their defaults.
STOP_BUDGET = 30 + 20


def instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_dockerfile_base_user_and_entrypoint() -> None:
    steps = instructions()
    words = [word for word, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    users = [args for word, args in steps if word == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    # The last USER comes before the command, after the installs.
    assert words.index("USER") > max(
        i for i, w in enumerate(words) if w == "RUN")
    entry = [args for word, args in steps if word in ("ENTRYPOINT", "CMD")]
    assert entry, "no ENTRYPOINT or CMD"
    for args in entry:
        exec_form(args)  # shell form would keep SIGTERM from the worker
    assert exec_form(dict(steps)["ENTRYPOINT"])[-1] == "main.py"
    assert dict(steps)["STOPSIGNAL"] in ("SIGTERM", "15")


def test_dockerfile_installs_runtime_requirements_only() -> None:
    steps = instructions()
    assert not any("requirements-dev" in args for _, args in steps)
    copies = [args.split() for word, args in steps if word == "COPY"]
    sources = {part for args in copies for part in args[:-1]
               if not part.startswith("--")}
    assert sources == {"requirements.txt", "main.py", "email_worker/"}
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "-r requirements.txt" in runs
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "HTTP_BIND=0.0.0.0" in env


def test_worker_imports_only_runtime_requirements() -> None:
    """What the image copies needs nothing but requirements.txt."""
    allowed = {"boto3", "botocore", "prometheus_client", "dotenv",
               "email_worker"}
    allowed |= set(sys.stdlib_module_names)
    files = [ROOT / "main.py", *(ROOT / "email_worker").rglob("*.py")]
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path}: {name}"


def dockerignored(name: str) -> bool:
    """Evaluate .dockerignore for a top-level name (last match wins)."""
    ignored = False
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(name, pattern):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_only_what_the_image_copies() -> None:
    for name in ("main.py", "email_worker", "requirements.txt"):
        assert not dockerignored(name), name
    for name in (".env", ".venv", ".git", "tests", "requirements-dev.txt",
                 "demo-output", "devstack", "deploy"):
        assert dockerignored(name), name


# -- the health check command, run here against a fake /health ----------


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_check(command: list[str], port: int) -> int:
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]], env={"HEALTH_PORT": str(port)},
        capture_output=True, timeout=30).returncode


def healthcheck_commands() -> list[list[str]]:
    steps = instructions()
    image = dict(steps)["HEALTHCHECK"]
    assert "--interval" in image
    image_command = exec_form(image.split(" CMD ", 1)[1])
    compose = yaml.safe_load(COMPOSE.read_text())
    test = compose["services"]["email-worker"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [image_command, test[1:]]


def test_healthcheck_commands_follow_health_status(
        health_server: http.server.HTTPServer) -> None:
    port = health_server.server_address[1]
    for command in healthcheck_commands():
        assert "urllib" in " ".join(command)
        _Health.status = 200
        assert run_check(command, port) == 0
        _Health.status = 503
        assert run_check(command, port) != 0
    _Health.status = 200


# -- docker-compose.yml ----------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def duration(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60,
                                  "h": 3600}[unit]
    return total


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_worker_service() -> None:
    services = compose()["services"]
    worker = services["email-worker"]
    assert "profiles" not in worker
    assert worker["env_file"] in (".env", [".env"])
    assert environment(worker)["HTTP_BIND"] == "0.0.0.0"
    assert duration(worker["stop_grace_period"]) > STOP_BUDGET
    published = {str(port).rsplit(":", 1)[-1] for port in worker["ports"]}
    assert {"8080", "8000"} <= published
    assert "build" in worker
    health = worker["healthcheck"]
    assert "/health" in " ".join(health["test"])
    assert duration(health["start_period"]) > 0


def test_compose_local_profile() -> None:
    services = compose()["services"]
    local = {name for name, s in services.items()
             if "local" in s.get("profiles", [])}
    assert {"moto", "mailpit", "email-worker-local"} <= local
    assert services["moto"]["image"].startswith("motoserver/moto")
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    worker = services["email-worker-local"]
    env = environment(worker)
    assert env["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert env["SMTP_HOST"] == "mailpit"
    assert env["HTTP_BIND"] == "0.0.0.0"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert duration(worker["stop_grace_period"]) > STOP_BUDGET
    # Every dependency is a service of the same profile.
    for name in local:
        for dependency in services[name].get("depends_on", {}):
            assert dependency in local, (name, dependency)
    # Published ports do not clash between services.
    published = [str(p).rsplit(":", 1)[0] for s in services.values()
                 for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_local_setup_script_creates_what_the_worker_needs(
        moto_url: str) -> None:
    service = compose()["services"]["local-setup"]
    script = service["entrypoint"][-1]
    env = {**environment(service), **client_environment(moto_url),
           "DOMAINS": "compose.example.com",
           "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-c", script], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    session = boto3.session.Session(
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    dynamodb = session.client("dynamodb", endpoint_url=moto_url)
    tables = set(dynamodb.list_tables()["TableNames"])
    assert {"email-rules", "email-blocked-senders",
            "ses-outbound-messages", "email-autoreply-log"} <= tables
    sqs = session.client("sqs", endpoint_url=moto_url)
    sqs.get_queue_url(QueueName="compose-example-com-queue")
    s3 = session.client("s3", endpoint_url=moto_url)
    s3.head_bucket(Bucket="compose-example-com-emails")
