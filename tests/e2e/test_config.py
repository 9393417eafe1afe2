"""Invalid settings stop start-up with status 2 and one line naming them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WorkerFactory

pytestmark = pytest.mark.e2e

CONFIG_ERROR_STATUS = 2


@pytest.mark.parametrize(("variable", "value"), [
    ("SMTP_PORT", "twenty-five"),
    ("DOMAINS", ""),
    ("DOMAINS", " , "),
    ("LOG_LEVEL", "CHATTY"),
], ids=["smtp_port_not_numeric", "domains_empty", "domains_only_commas",
        "log_level_unknown"])
class TestInvalidSetting:

    def test_config_exits_with_status_2(self, offline_worker: WorkerFactory,
                                        variable: str, value: str) -> None:
        worker = offline_worker(**{variable: value})
        assert worker.run_to_exit() == CONFIG_ERROR_STATUS

    def test_config_writes_one_stderr_line(
            self, offline_worker: WorkerFactory, variable: str,
            value: str) -> None:
        worker = offline_worker(**{variable: value})
        worker.run_to_exit()
        assert len(worker.stderr_text().splitlines()) == 1

    def test_config_error_names_variable(self, offline_worker: WorkerFactory,
                                         variable: str, value: str) -> None:
        worker = offline_worker(**{variable: value})
        worker.run_to_exit()
        assert variable in worker.stderr_text()

    def test_config_error_has_no_traceback(
            self, offline_worker: WorkerFactory, variable: str,
            value: str) -> None:
        worker = offline_worker(**{variable: value})
        worker.run_to_exit()
        assert "Traceback" not in worker.stderr_text()
