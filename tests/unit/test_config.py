"""Settings come from the environment, and a bad value names its variable."""

from __future__ import annotations

import socket

import pytest

from email_worker.config import load_settings
from email_worker.errors import ConfigError

BASE = {"DOMAINS": "example.com"}


def settings_with(**values: str):
    return load_settings({**BASE, **values})


def config_error(**values: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **values})
    return caught.value


def test_defaults_match_contract():
    settings = load_settings(BASE)
    assert settings.aws_region == "us-east-2"
    assert settings.aws_endpoint_url is None
    assert settings.smtp_host == "localhost"
    assert settings.smtp_port == 25
    assert settings.internal_smtp_port == 2525
    assert settings.rules_table == "email-rules"
    assert settings.messages_table == "ses-outbound-messages"
    assert settings.blocked_table == "email-blocked-senders"
    assert settings.autoreply_table == "email-autoreply-log"
    assert settings.health_port == 8080
    assert settings.metrics_port == 8000
    assert settings.poll_wait_seconds == 20
    assert settings.visibility_timeout == 300
    assert settings.shutdown_timeout == 30.0
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"
    assert settings.smtp_use_tls is False


def test_worker_name_defaults_to_hostname():
    assert load_settings(BASE).worker_name == socket.gethostname()


def test_domains_missing_names_variable():
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    assert caught.value.variable == "DOMAINS"


def test_domains_blank_names_variable():
    assert config_error(DOMAINS="  ").variable == "DOMAINS"


def test_domains_only_commas_rejected():
    assert config_error(DOMAINS=" , ,").variable == "DOMAINS"


def test_domains_normalised_and_deduplicated():
    settings = settings_with(DOMAINS=" Example.COM, example.net.,example.com")
    assert settings.domains == ("example.com", "example.net")


@pytest.mark.parametrize("value", ["exa mple.com", "localhost",
                                   "-bad.example.com", "a@example.com"])
def test_domains_invalid_rejected(value):
    error = config_error(DOMAINS=value)
    assert error.variable == "DOMAINS"


@pytest.mark.parametrize("name", ["SMTP_PORT", "INTERNAL_SMTP_PORT",
                                  "HEALTH_PORT", "METRICS_PORT"])
@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "25.5"])
def test_port_invalid_names_variable(name, value):
    assert config_error(**{name: value}).variable == name


def test_port_value_parsed():
    assert settings_with(SMTP_PORT=" 2526 ").smtp_port == 2526


def test_error_message_shows_value():
    error = config_error(SMTP_PORT="abc")
    assert "'abc'" in str(error)


def test_error_message_starts_with_variable():
    assert str(config_error(SMTP_PORT="abc")).startswith("SMTP_PORT:")


@pytest.mark.parametrize("value,expected", [
    ("true", True), ("YES", True), ("1", True), ("on", True),
    ("false", False), ("No", False), ("0", False), ("off", False)])
def test_smtp_use_tls_parsed(value, expected):
    assert settings_with(SMTP_USE_TLS=value).smtp_use_tls is expected


def test_smtp_use_tls_invalid_rejected():
    assert config_error(SMTP_USE_TLS="maybe").variable == "SMTP_USE_TLS"


def test_log_level_case_insensitive():
    assert settings_with(LOG_LEVEL="debug").log_level == "DEBUG"


def test_log_level_unknown_rejected():
    assert config_error(LOG_LEVEL="VERBOSE").variable == "LOG_LEVEL"


def test_log_format_json_accepted():
    assert settings_with(LOG_FORMAT="JSON").log_format == "json"


def test_log_format_unknown_rejected():
    assert config_error(LOG_FORMAT="xml").variable == "LOG_FORMAT"


@pytest.mark.parametrize("value", ["21", "-1", "twenty"])
def test_poll_wait_out_of_range_rejected(value):
    error = config_error(POLL_WAIT_SECONDS=value)
    assert error.variable == "POLL_WAIT_SECONDS"


def test_visibility_timeout_above_sqs_limit_rejected():
    error = config_error(VISIBILITY_TIMEOUT="43201")
    assert error.variable == "VISIBILITY_TIMEOUT"


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "soon"])
def test_shutdown_timeout_invalid_rejected(value):
    error = config_error(SHUTDOWN_TIMEOUT=value)
    assert error.variable == "SHUTDOWN_TIMEOUT"


def test_shutdown_timeout_fraction_accepted():
    assert settings_with(SHUTDOWN_TIMEOUT="2.5").shutdown_timeout == 2.5


def test_max_receive_count_zero_rejected():
    error = config_error(MAX_RECEIVE_COUNT="0")
    assert error.variable == "MAX_RECEIVE_COUNT"


def test_health_and_metrics_port_clash_rejected():
    error = config_error(HEALTH_PORT="9000", METRICS_PORT="9000")
    assert error.variable == "METRICS_PORT"


def test_endpoint_url_trailing_slash_removed():
    settings = settings_with(AWS_ENDPOINT_URL="http://127.0.0.1:5000/")
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize("value", ["127.0.0.1:5000", "ftp://host",
                                   "http://"])
def test_endpoint_url_invalid_rejected(value):
    error = config_error(AWS_ENDPOINT_URL=value)
    assert error.variable == "AWS_ENDPOINT_URL"


def test_endpoint_url_blank_means_unset():
    assert settings_with(AWS_ENDPOINT_URL=" ").aws_endpoint_url is None


def test_smtp_credentials_optional():
    settings = settings_with(SMTP_USER="relay", SMTP_PASS="secret")
    assert (settings.smtp_user, settings.smtp_pass) == ("relay", "secret")


def test_table_names_overridable():
    settings = settings_with(DYNAMODB_RULES_TABLE="rules-test",
                             DYNAMODB_BLOCKED_TABLE="blocked-test")
    assert settings.rules_table == "rules-test"
    assert settings.blocked_table == "blocked-test"


def test_queue_name_default_dashes_domain():
    settings = load_settings(BASE)
    assert settings.queue_name("mail.example.com") == \
        "mail-example-com-queue"


def test_bucket_name_default_dashes_domain():
    assert load_settings(BASE).bucket_name("example.com") == \
        "example-com-emails"


def test_bucket_template_domain_placeholder():
    settings = settings_with(BUCKET_NAME_TEMPLATE="inbound.{domain}")
    assert settings.bucket_name("example.com") == "inbound.example.com"


def test_queue_template_with_dots_rejected():
    # SQS queue names allow only letters, digits, hyphens and underscores.
    with pytest.raises(ConfigError) as caught:
        settings_with(QUEUE_NAME_TEMPLATE="inbound-{domain}")
    assert caught.value.variable == "QUEUE_NAME_TEMPLATE"


def test_queue_template_shared_by_domains_rejected():
    with pytest.raises(ConfigError) as caught:
        load_settings({"DOMAINS": "a.example,b.example",
                       "QUEUE_NAME_TEMPLATE": "shared-queue"})
    assert caught.value.variable == "QUEUE_NAME_TEMPLATE"


@pytest.mark.parametrize(("variable", "value"), [
    ("AWS_REGION", "not a region!"),
    ("AWS_ENDPOINT_URL", "http://a b"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:99999"),
    ("SMTP_PORT", "2_5"),
    ("HTTP_BIND", "999.1.1.1"),
    ("WORKER_NAME", "x" * 200),
    ("QUEUE_NAME_TEMPLATE", "{domain.__class__}"),
])
def test_invalid_value_names_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        settings_with(**{variable: value})
    assert caught.value.variable == variable


def test_bucket_template_dashed_placeholder():
    settings = settings_with(BUCKET_NAME_TEMPLATE="mail-{domain_dashed}")
    assert settings.bucket_name("example.com") == "mail-example-com"


@pytest.mark.parametrize("template", [
    "{unknown}-queue", "{0}-queue", "{domain!z}", "{domain",
    "{domain.missing}", "{domain[key]}"])
def test_queue_template_invalid_names_variable(template):
    error = config_error(QUEUE_NAME_TEMPLATE=template)
    assert error.variable == "QUEUE_NAME_TEMPLATE"
