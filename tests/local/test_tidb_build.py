"""Finding and caching tidb-server, and the advice when Go is missing."""

from __future__ import annotations

import os

import pytest

from crm_helpers.errors import GoNotFound, TiDBBuildError
from crm_helpers.local import build


def test_pin_names_the_release_commit_and_a_go125_toolchain():
    go_mod = (build.GO_MODULE_DIR / "go.mod").read_text()
    # A Go pseudo-version names the commit's time (UTC) and hash: the binary's stamp must agree.
    stamp = "".join(ch for ch in build.TIDB_COMMIT_TIME if ch.isdigit())
    assert f"github.com/pingcap/tidb v1.1.0-beta.0.{stamp}-{build.TIDB_COMMIT[:12]}" in go_mod
    assert f"github.com/pingcap/tidb/pkg/parser v0.0.0-{stamp}-{build.TIDB_COMMIT[:12]}" \
        in go_mod
    assert build.TIDB_VERSION.startswith(build.TIDB_RELEASE)
    assert build.go_toolchain().startswith("go1.25.")


def test_cache_lives_outside_the_repository_and_is_keyed_by_the_pin():
    path = build.cached_binary_path()
    assert build.PROJECT_ROOT not in path.parents
    assert f"tidb-server-{build.TIDB_RELEASE}-{build.pin_key()}" in str(path)


def test_cache_dir_follows_xdg_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("TIDB_CRM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_dir() == tmp_path / "tidb-crm-notebooks"
    monkeypatch.setenv("TIDB_CRM_CACHE", str(tmp_path / "own"))
    assert build.cache_dir() == tmp_path / "own"


def test_missing_go_names_the_three_ways_out(monkeypatch, tmp_path):
    monkeypatch.delenv("TIDB_SERVER_BIN", raising=False)
    monkeypatch.setenv("TIDB_CRM_CACHE", str(tmp_path))  # nothing cached here
    monkeypatch.setenv("PATH", str(tmp_path))  # and no `go`
    with pytest.raises(GoNotFound) as caught:
        build.tidb_server_binary()
    message = str(caught.value)
    assert "install Go" in message and "TIDB_SERVER_BIN" in message and "TIDB_URL" in message


def test_tidb_server_bin_is_used_when_executable(monkeypatch, tmp_path):
    binary = tmp_path / "tidb-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("TIDB_SERVER_BIN", str(binary))
    assert build.tidb_server_binary() == binary
    os.chmod(binary, 0o644)
    with pytest.raises(TiDBBuildError, match="not an executable"):
        build.tidb_server_binary()
