"""Connection failures become errors that say what to check, without the password."""

from __future__ import annotations

import pytest

from crm_helpers.engines import check_connection, tidb_engine
from crm_helpers.errors import TiDBAuthError, TiDBNotRunning
from tests.conftest import free_port


def test_wrong_password_says_so_without_printing_it(tidb_settings):
    url = tidb_settings.url().set(password="Wrong-Pass-123")
    with pytest.raises(TiDBAuthError) as caught:
        tidb_engine(url)
    message = str(caught.value)
    assert "refused the login" in message and "TIDB_PASSWORD" in message
    assert "Wrong-Pass-123" not in message
    assert "***" in message


def test_tidb_that_is_down_says_how_to_start_it(tidb_settings):
    url = tidb_settings.url().set(port=free_port(), password="Another-Secret")
    with pytest.raises(TiDBNotRunning) as caught:
        check_connection(url)
    message = str(caught.value)
    assert "Cannot reach TiDB" in message and "crm-tidb up" in message
    assert "connection refused" in message
    assert "Another-Secret" not in message


def test_a_working_url_passes(tidb_settings):
    check_connection(tidb_settings.url())
