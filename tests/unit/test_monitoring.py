"""The dashboard and the alert rules use only metrics the worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import yaml
from prometheus_client.metrics_core import Metric

from email_worker.metrics.registry import WorkerMetrics

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yml"

# Series from outside the worker: Prometheus's own scrape status, and the
# CloudWatch exporter's SQS metric for the dead-letter queues.
EXTERNAL = {"up", "aws_sqs_approximate_number_of_messages_visible_average"}

_FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase",
    "histogram_quantile", "time", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "label_values", "abs", "clamp_min", "delta", "deriv", "topk",
}
_SUFFIXES = {"counter": ("_total",),
             "histogram": ("_bucket", "_sum", "_count"),
             "gauge": ("",)}


def exported_names() -> set[str]:
    names = set()
    family: Metric
    for family in WorkerMetrics().registry.collect():
        for suffix in _SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return names


def metric_names(expression: str) -> set[str]:
    """Return the metric names in a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)           # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)          # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)"
                  r"\s*\([^)]*\)", "", text)        # label lists
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)",
                  r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?",
                             text):
        word, call = match.groups()
        if call or word in _FUNCTIONS_AND_KEYWORDS:
            continue
        names.add(word)
    return names


def dashboard_expressions() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    yield value
                elif key == "query" and isinstance(value, str) and \
                        "(" in value:
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    yield from walk(json.loads(DASHBOARD.read_text()))


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_extractor_finds_metric_names_only() -> None:
    assert metric_names(
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{domain=~"x"}'
        '[$__rate_interval]))) / on(domain) b_total > 0.5 and up == 0'
    ) == {"a_bucket", "b_total", "up"}
    assert metric_names("time() - max by (domain) (last_poll)") == {
        "last_poll"}


def test_registry_names_include_every_documented_metric() -> None:
    names = exported_names()
    for name in ("emails_processed_total", "emails_in_flight",
                 "email_processing_seconds_bucket",
                 "worker_last_poll_timestamp_seconds",
                 "sqs_queue_messages", "smtp_errors_total"):
        assert name in names


def test_dashboard_uses_only_exported_metrics() -> None:
    expressions = list(dashboard_expressions())
    assert len(expressions) >= 10
    used = set().union(*(metric_names(e) for e in expressions))
    assert used - exported_names() - EXTERNAL == set()
    # The panels the dashboard promises.
    for name in ("emails_processed_total", "email_processing_seconds_bucket",
                 "sqs_queue_messages", "smtp_errors_total",
                 "aws_api_calls_total", "autoreplies_sent_total",
                 "forwards_sent_total", "bounces_rewritten_total",
                 "emails_in_flight"):
        assert name in used, name


def test_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_alerts_use_only_exported_metrics() -> None:
    rules = alert_rules()
    used = set().union(*(metric_names(r["expr"]) for r in rules))
    assert used - exported_names() - EXTERNAL == set()
    names = {r["alert"] for r in rules}
    assert len(names) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    by_metric = {r["alert"]: metric_names(r["expr"]) for r in rules}
    assert "up" in set().union(*by_metric.values())
    assert "worker_last_poll_timestamp_seconds" in set().union(
        *by_metric.values())
    assert "sqs_queue_messages" in set().union(*by_metric.values())
