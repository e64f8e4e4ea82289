"""TLS end to end: a local tidb-server that requires TLS, with certificates made here.

The server's certificate is issued by a CA of this test for the name `localhost` only, so
connecting to `localhost` with that CA must work, while another CA, the system's CAs, or the
address 127.0.0.1 (not in the certificate) must each fail as a TLS error that says so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import connectorx
import pymysql
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy_tidb import InvalidDialectOption

from crm_helpers.analysis import reading
from crm_helpers.analysis.reading import read_frame
from crm_helpers.config import Settings, load_settings
from crm_helpers.engines import check_connection, tidb_engine
from crm_helpers.errors import TiDBTLSError
from crm_helpers.local.server import LocalTiDB, ServerTLS, start_local_tidb, stop_local_tidb
from tests.conftest import outcome_within, spare_tidb

pytestmark = pytest.mark.lifecycle

#: A TLS failure must be reported well before connectorx's 30 s connection-pool wait.
BOUND = 20.0


@dataclass(frozen=True)
class Certificates:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return folder / f"{name}.pem", folder / f"{name}.key"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key = make_ca(folder, "crm-test-ca")
    other_ca, _ = make_ca(folder, "crm-other-ca")
    (folder / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost", cwd=folder)
    openssl("x509", "-req", "-in", "server.csr", "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext",
            cwd=folder)
    return Certificates(ca, other_ca, folder / "server.pem", folder / "server.key")


@pytest.fixture(scope="module")
def tls_tidb(tmp_path_factory: pytest.TempPathFactory,
             certificates: Certificates) -> Iterator[LocalTiDB]:
    """A local TiDB that refuses clients without TLS."""
    tls = ServerTLS(certificates.server_cert, certificates.server_key)
    with spare_tidb(tmp_path_factory.mktemp("tls-tidb"), tls=tls) as local:
        # TiDB only takes this over a TLS connection, and keeps it across restarts.
        with pymysql.connect(host="localhost", port=local.port, user="root",
                             ssl_ca=str(certificates.ca), ssl_verify_identity=True,
                             read_timeout=30) as admin, admin.cursor() as cursor:
            cursor.execute("SET GLOBAL require_secure_transport = ON")
        yield local


def settings(local: LocalTiDB, host: str = "localhost", **environ: str) -> Settings:
    return load_settings(environ={"TIDB_HOST": host, "TIDB_PORT": str(local.port), **environ},
                         env_file=None)


def cipher(engine: Engine) -> str:
    with engine.connect() as connection:
        row = connection.execute(text("SHOW STATUS LIKE 'Ssl_cipher'")).one()
    return row[1]


def test_the_server_refuses_plain_connections_and_restarts_with_tls(tls_tidb, certificates):
    with pytest.raises(pymysql.err.OperationalError, match="3159"):
        pymysql.connect(host="127.0.0.1", port=tls_tidb.port, user="root", ssl_disabled=True,
                        read_timeout=30)
    stop_local_tidb(tls_tidb)
    start_local_tidb(tls_tidb, timeout=60)  # ready although the probe gets 3159


def test_ca_path_gives_a_verified_encrypted_connection(tls_tidb, certificates):
    engine = tidb_engine(settings(tls_tidb, CA_PATH=str(certificates.ca)).url())
    assert cipher(engine)  # non-empty: the session is encrypted
    engine.dispose()


def test_another_ca_is_a_tls_error_naming_ca_path(tls_tidb, certificates):
    url = settings(tls_tidb, CA_PATH=str(certificates.other_ca)).url()
    with pytest.raises(TiDBTLSError) as caught:
        check_connection(url)
    message = str(caught.value)
    assert f"not signed by the CA in {certificates.other_ca}" in message
    assert "CA_PATH" in message and "crm-tidb up" not in message


def test_certificate_for_another_name_is_a_tls_error_naming_the_host(tls_tidb, certificates):
    url = settings(tls_tidb, host="127.0.0.1", CA_PATH=str(certificates.ca)).url()
    with pytest.raises(TiDBTLSError) as caught:
        check_connection(url)
    message = str(caught.value)
    assert "not issued for the host name '127.0.0.1'" in message
    assert "TIDB_HOST" in message


def test_without_ca_path_the_server_is_checked_against_the_system_cas(tls_tidb):
    # The server requires TLS; PyMySQL alone would encrypt without checking anything.
    with pytest.raises(TiDBTLSError, match="not signed by the system's CA certificates"):
        check_connection(settings(tls_tidb).url())


def test_tls_options_in_tidb_url_are_kept_and_used(tls_tidb, certificates):
    base = f"tidb://root@localhost:{tls_tidb.port}/test"
    kept = load_settings(environ={"TIDB_URL": base + f"?ssl_ca={certificates.ca}"
                                  "&ssl_verify_cert=true&ssl_verify_identity=true"},
                         env_file=None)
    query = kept.url().query
    assert (query["ssl_verify_cert"], query["ssl_verify_identity"]) == ("true", "true")
    assert query["ssl_ca"] == str(certificates.ca)
    engine = tidb_engine(kept.url())
    assert cipher(engine)
    engine.dispose()
    # ssl_verify_cert without a CA: verified against the system's CAs, so refused here.
    system = load_settings(environ={"TIDB_URL": base + "?ssl_verify_cert=true"}, env_file=None)
    with pytest.raises(TiDBTLSError, match="system's CA certificates"):
        check_connection(system.url())


def test_explicitly_unverified_tls_is_honoured_with_a_warning(tls_tidb):
    url = f"tidb://root@127.0.0.1:{tls_tidb.port}/test?ssl_verify_cert=false"
    with pytest.warns(UserWarning, match="not checked"):
        engine = create_engine(url)
    assert cipher(engine)
    engine.dispose()


def test_tls_turned_off_against_a_server_that_requires_it(tls_tidb):
    url = f"tidb://root@localhost:{tls_tidb.port}/test?ssl_disabled=true"
    error = outcome_within(BOUND, lambda: check_connection(url))
    assert isinstance(error, TiDBTLSError), error
    assert "requires TLS" in str(error) and "ssl_disabled" in str(error)


def test_read_frame_over_tls_is_verified_and_fast(tls_tidb, certificates):
    engine = tidb_engine(settings(tls_tidb, CA_PATH=str(certificates.ca)).url())
    frame = read_frame(engine, "SELECT 1 AS one, 'tls' AS how")
    assert frame.to_dict("records") == [{"one": 1, "how": "tls"}]
    assert frame.attrs["read_path"] == "connectorx"  # verified TLS on the fast path too
    engine.dispose()
    for url in (settings(tls_tidb, CA_PATH=str(certificates.other_ca)).url(),
                settings(tls_tidb).url(),
                f"tidb://root@localhost:{tls_tidb.port}/test?ssl_disabled=true"):
        engine = create_engine(url)
        error = outcome_within(BOUND, lambda engine=engine: read_frame(engine, "SELECT 1"))
        assert isinstance(error, TiDBTLSError), error
        engine.dispose()


def test_tls_asked_of_a_server_without_tls_says_so(tidb_settings, certificates):
    url = tidb_settings.url().update_query_dict({"ssl_ca": str(certificates.ca)})
    with pytest.raises(TiDBTLSError, match="does not offer"):
        check_connection(url)


@pytest.mark.parametrize(("query", "expected"), [
    ("ssl_mode=VERIFY_IDENTITY", "option ssl_mode, which the tidb dialect does not know"),
    ("ssl_verify_cert=perhaps", "ssl_verify_cert is 'perhaps'"),
    ("ssl_disabled=true&ssl_ca=/etc/hostname", "both turns TLS off"),
    ("ssl_ca=/no/such/ca.pem", "does not exist"),
    ("ssl_verify_cert=false&ssl_verify_identity=true", "host name"),
])
def test_tls_options_that_make_no_sense_are_refused(query, expected):
    # The dialect's own error, an ArgumentError, before any connection.
    with pytest.raises(InvalidDialectOption, match=expected):
        create_engine(f"tidb://root@localhost:4000/x?{query}")


def test_connectorx_itself_refuses_a_server_it_cannot_verify(tls_tidb, certificates):
    # read_frame never gets here with a bad CA (PyMySQL's check fails first, at once), but the
    # URL it would give connectorx must make connectorx verify on its own as well.
    engine = create_engine(settings(tls_tidb, CA_PATH=str(certificates.other_ca)).url())
    url = reading._connectorx_url(engine)
    assert "ssl-mode=VERIFY_IDENTITY" in url
    with pytest.raises(Exception, match="certificate verify failed"):
        connectorx.read_sql(url, "SELECT 1")  # after connectorx's own 30 s of retries
