"""Find the tidb-server binary, building the pinned TiDB release from Go source if needed.

The pin lives in `tidb/go.mod` (+ `go.sum`). The binary is cached outside the repository,
in the user's cache directory under a key derived from the pin, so every clone on the
machine reuses one build and a changed pin triggers a new one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.errors import GoNotFound, TiDBBuildError

# The newest release-8.5 commit the Go module proxy serves (2026-09-03), six days after the
# v8.5.8 release: the proxy refuses the tag's own commit. It is the first pin with
# `FLUSH STATS_DELTA` (added in v8.5.7), and its version says it is past v8.5.8.
TIDB_RELEASE = "v8.5.8"
TIDB_COMMIT = "ac41d7e3c8fcc7ffdb97311e2996cc9fb178e4c9"
TIDB_COMMIT_TIME = "2026-09-03 09:58:44"
TIDB_VERSION = f"{TIDB_RELEASE}-{TIDB_COMMIT[:12]}"
GO_MODULE_DIR = PROJECT_ROOT / "tidb"
MAIN_PACKAGE = "github.com/pingcap/tidb/cmd/tidb-server"

# What `make server` in TiDB's own repository stamps into the binary, so that
# `SELECT tidb_version()` reports the release instead of "None".
_LDFLAGS = " ".join(
    f'-X "{symbol}={value}"'
    for symbol, value in [
        ("github.com/pingcap/tidb/pkg/parser/mysql.TiDBReleaseVersion", TIDB_VERSION),
        ("github.com/pingcap/tidb/pkg/util/versioninfo.TiDBGitHash", TIDB_COMMIT),
        ("github.com/pingcap/tidb/pkg/util/versioninfo.TiDBGitBranch", "release-8.5"),
        ("github.com/pingcap/tidb/pkg/util/versioninfo.TiDBBuildTS", TIDB_COMMIT_TIME),
    ]
)


def go_toolchain() -> str:
    """The Go release named by the pin's `go` line, which TiDB checks at start-up."""
    for line in (GO_MODULE_DIR / "go.mod").read_text().splitlines():
        if line.startswith("go "):
            return "go" + line.split()[1]
    raise TiDBBuildError(f"{GO_MODULE_DIR / 'go.mod'} has no `go` line.")


def cache_dir() -> Path:
    """The directory under which built tidb-server binaries are kept."""
    if os.environ.get("TIDB_CRM_CACHE"):
        folder = Path(os.environ["TIDB_CRM_CACHE"]).expanduser()
        if folder.exists() and not folder.is_dir():
            raise TiDBBuildError(f"TIDB_CRM_CACHE is {str(folder)!r}, which is a file: point it "
                                 "at a folder for the built tidb-server (it is created if "
                                 "missing), or unset it to use the user's cache folder.")
        return folder
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and to be ignored (Go refuses it).
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else (
        Path.home() / ("Library/Caches" if sys.platform == "darwin" else ".cache"))
    return base / "tidb-crm-notebooks"


def pin_key() -> str:
    """A short hash of everything that decides the binary: go.mod, go.sum, flags, platform."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        for line in (GO_MODULE_DIR / name).read_text().splitlines():
            # Comments do not change the binary, so editing one must not force a rebuild.
            code = line.split("//", 1)[0].strip()
            if code:
                digest.update(code.encode() + b"\n")
    digest.update(_LDFLAGS.encode())
    digest.update(f"{sys.platform}-{platform.machine()}".encode())
    return digest.hexdigest()[:12]


def cached_binary_path() -> Path:
    """Where the build of the current pin is (or will be) cached."""
    return cache_dir() / f"tidb-server-{TIDB_RELEASE}-{pin_key()}" / "tidb-server"


def tidb_server_binary(*, build: bool = True) -> Path:
    """The tidb-server to run: `TIDB_SERVER_BIN`, else the cached build, else a new build."""
    override = os.environ.get("TIDB_SERVER_BIN")
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise TiDBBuildError(
                f"TIDB_SERVER_BIN is {override!r}, which is not an executable file. "
                "Point it at a tidb-server binary, or unset it to build one.")
        return path
    cached = cached_binary_path()
    if cached.is_file():
        return cached
    if not build:
        raise TiDBBuildError(f"tidb-server {TIDB_RELEASE} is not built yet; run `crm-tidb build`.")
    return build_tidb_server()


def build_tidb_server() -> Path:
    """Build tidb-server from the pinned Go module into the cache, showing progress."""
    go = shutil.which("go")
    if go is None:
        raise GoNotFound(
            f"Building tidb-server {TIDB_RELEASE} needs Go, and `go` is not on PATH. Either\n"
            "  1. install Go (https://go.dev/doc/install; any recent version, it fetches the "
            "toolchain TiDB needs), or\n"
            "  2. set TIDB_SERVER_BIN to a tidb-server you already have "
            "(e.g. from `tiup install tidb:v8.5.8`), or\n"
            "  3. set TIDB_URL to a running TiDB (TiDB Cloud, TiUP playground, Docker) "
            "and nothing is started."
        )
    if not (GO_MODULE_DIR / "go.mod").is_file():
        raise TiDBBuildError(f"The TiDB pin {GO_MODULE_DIR / 'go.mod'} is missing: run from a "
                             "checkout of this project (pip install -e .).")
    target = cached_binary_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"tidb-server.partial-{os.getpid()}")
    print(f"Building tidb-server {TIDB_RELEASE} from the Go module proxy into {target.parent}.\n"
          "This happens once per machine: about 8 minutes on 2 cores (2 GB of Go modules), "
          "seconds afterwards.",
          flush=True)
    started = time.monotonic()
    total = _count_packages(go)
    command = [go, "build", "-trimpath", "-v", "-ldflags", _LDFLAGS, "-o", str(partial),
               MAIN_PACKAGE]
    _run_with_progress(command, total)
    partial.replace(target)
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"Built {target} in {minutes} min {seconds} s.", flush=True)
    return target


def _go_env() -> dict[str, str]:
    # Whatever Go is installed fetches the pinned toolchain from the module proxy.
    return {**os.environ, "GOTOOLCHAIN": go_toolchain()}


def _count_packages(go: str) -> int | None:
    """How many packages the build may compile (for the progress bar), if Go can tell."""
    print(f"Fetching {go_toolchain()} and TiDB's Go modules, listing packages...", flush=True)
    result = subprocess.run([go, "list", "-deps", MAIN_PACKAGE], cwd=GO_MODULE_DIR,
                            env=_go_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TiDBBuildError(f"`go list` failed in {GO_MODULE_DIR}:\n{result.stderr[-3000:]}\n"
                             "Check that the Go module proxy is reachable (GOPROXY).")
    return len(result.stdout.splitlines()) or None


def _run_with_progress(command: list[str], total: int | None) -> None:
    from tqdm.auto import tqdm

    tail: list[str] = []
    with subprocess.Popen(command, cwd=GO_MODULE_DIR, env=_go_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc, \
            tqdm(total=total, unit="pkg", desc="go build tidb-server") as bar:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-40:], line]
            # `go build -v` prints each package as it compiles it; anything else is a message.
            if line and " " not in line and not line.startswith("#"):
                bar.update(1)
                bar.set_postfix_str(line[-40:], refresh=False)
    if proc.returncode != 0:
        raise TiDBBuildError("go build of tidb-server failed; its last lines:\n"
                             + "\n".join(tail))
