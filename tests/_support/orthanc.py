"""Start and stop a throw-away Debian Orthanc (with the DICOMweb plugin) on loopback.

Usage::

    with OrthancServer(client_aets={"CALCI_SCU": None}) as orthanc:
        orthanc.base_url      # http://127.0.0.1:<free port>
        orthanc.dicomweb_url  # http://127.0.0.1:<free port>/dicom-web
        orthanc.dicom_port    # free loopback DICOM port, AET orthanc.aet
        orthanc.register_modality("MOVE_SCP", "MOVE_SCP", "127.0.0.1", 11112)

Everything lives in a temporary directory (config, SQLite index, storage, log) that is
removed on stop.  Needs only the standard library and Debian's ``orthanc`` and
``orthanc-dicomweb`` packages.  In pytest, wrap it in a session-scoped fixture: start-up
is ~0.2 s, a graceful stop ~3.5 s (Orthanc's own shutdown polling).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class OrthancStartError(RuntimeError):
    """Orthanc exited or did not answer /system in time; the message carries its log."""


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM`` (util-linux, in Debian's base system) execs Orthanc
    with a parent-death signal: if the Python process is killed hard (SIGKILL, CI
    timeout), Orthanc gets SIGTERM instead of running on as an orphan.  setpriv execs,
    so the Popen pid *is* Orthanc.  (preexec_fn would do the same but is unsafe with
    threads.)  Caveat: the signal fires when the *thread* that started it ends, so start
    Orthanc from the main thread (pytest fixtures do)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def orthanc_available() -> bool:
    """True when the Debian binary and the DICOMweb plugin are both installed."""
    return os.access(ORTHANC_BINARY, os.X_OK) and os.path.exists(DICOMWEB_PLUGIN)


def build_config(
    workdir: Path,
    http_port: int,
    dicom_port: int,
    *,
    aet: str = "ORTHANC",
    username: str = "calci",
    password: str = "calci-secret",
    modalities: dict[str, dict] | None = None,
    strict_dicom: bool = True,
    extra: dict | None = None,
) -> dict:
    """The JSON configuration (a dict) for one test instance.

    ``modalities`` maps a symbolic name to Orthanc's object form of a DicomModalities
    entry, e.g. ``{"AET": "CALCI_SCU", "Host": "127.0.0.1", "Port": 11112}``.

    ``strict_dicom=True`` makes Orthanc reject, at association time, any calling AE that
    is not in DicomModalities (all DicomAlwaysAllow* false), any called AE other than
    ``aet`` (DicomCheckCalledAet) and any known AE connecting from another host than the
    one listed (DicomCheckModalityHost).  With ``strict_dicom=False`` Orthanc's defaults
    apply: unknown AEs are associated and may C-ECHO and C-STORE, but their C-FIND/C-GET/
    C-MOVE are refused with a DIMSE failure status.
    """
    storage = workdir / "storage"
    cfg = {
        "Name": "calci-test-orthanc",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        # plugins: the DICOMweb one only (a folder would also load worklists/serve-folders)
        "Plugins": [DICOMWEB_PLUGIN],
        "LuaScripts": [],
        "ExecuteLuaEnabled": False,
        # HTTP: Orthanc 1.10 always binds 0.0.0.0; RemoteAccessAllowed=false makes it
        # answer only loopback clients, and basic auth is required even from there.
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "HttpDescribeErrors": True,
        "HttpCompressionEnabled": False,
        "HttpThreadsCount": 8,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "MetricsEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
        # DICOM: also binds 0.0.0.0; the modality/AET checks below are the guard.
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": strict_dicom,
        "DicomCheckModalityHost": strict_dicom,
        "DicomModalities": modalities or {},
        "DicomModalitiesInDatabase": False,
        "DicomScuTimeout": 5,  # Orthanc's own outgoing associations (C-MOVE, C-STORE SCU)
        "DicomScpTimeout": 10,
        "DicomAssociationCloseDelay": 0,  # close the C-MOVE sub-association at once
        "DicomThreadsCount": 2,
        "SynchronousCMove": True,  # C-MOVE-RSP only after the sub-operations finished
        "UnknownSopClassAccepted": False,
        # start-up/shutdown: no job persistence, no waiting for "stable" resources
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "StableAge": 1,
        "OverwriteInstances": False,
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            "Host": f"127.0.0.1:{http_port}",  # used in RetrieveURL of STOW/QIDO answers
            "Ssl": False,
        },
    }
    if strict_dicom:
        cfg.update(
            {
                "DicomAlwaysAllowEcho": False,
                "DicomAlwaysAllowStore": False,
                "DicomAlwaysAllowFind": False,
                "DicomAlwaysAllowFindWorklist": False,
                "DicomAlwaysAllowGet": False,
                "DicomAlwaysAllowMove": False,
            }
        )
    if extra:
        cfg.update(extra)
    return cfg


class OrthancServer:
    """One Orthanc process with its own temporary storage, config and log."""

    def __init__(
        self,
        *,
        aet: str = "ORTHANC",
        username: str = "calci",
        password: str = "calci-secret",
        client_aets: dict[str, int | None] | None = None,
        strict_dicom: bool = True,
        extra_config: dict | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        tmp_parent: str | None = None,
    ):
        # client_aets: AET -> port of its Storage SCP (None: it only calls Orthanc).
        # Orthanc needs host and port for every modality, so None becomes port 1.
        self.aet = aet
        self.username = username
        self.password = password
        self.client_aets = dict(client_aets or {})
        self.strict_dicom = strict_dicom
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.tmp_parent = tmp_parent
        self.workdir: Path | None = None
        self.process: subprocess.Popen | None = None
        self.http_port = self.dicom_port = 0
        self.log_text = ""  # filled on stop (the workdir, with the log, is removed)
        self.start_seconds = self.stop_seconds = 0.0
        self.returncode: int | None = None

    # -- addresses -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/dicom-web"

    @property
    def auth_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    # -- tiny REST client (stdlib only) -----------------------------------------------
    def rest(self, method: str, path: str, body=None, timeout: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", self.auth_header)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as rsp:
            payload = rsp.read()
        return json.loads(payload) if payload.strip() else None

    def register_modality(self, name: str, aet: str, host: str, port: int) -> None:
        """Add/replace a DicomModalities entry at run time (PUT /modalities/{name}).

        Kept in memory only (DicomModalitiesInDatabase=false), gone on restart."""
        self.rest("PUT", f"/modalities/{name}", {"AET": aet, "Host": host, "Port": port})

    # -- life cycle -------------------------------------------------------------------
    def _modalities(self) -> dict[str, dict]:
        return {
            aet: {"AET": aet, "Host": "127.0.0.1", "Port": port or 1}
            for aet, port in self.client_aets.items()
        }

    def start(self) -> OrthancServer:
        if not orthanc_available():
            raise OrthancStartError(
                f"{ORTHANC_BINARY} or {DICOMWEB_PLUGIN} missing: "
                "apt-get install -y orthanc orthanc-dicomweb"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="orthanc-test-", dir=self.tmp_parent))
        t0 = time.monotonic()
        last_error: Exception | None = None
        # free_loopback_port() can race with another process: retry with new ports
        for _attempt in range(3):
            self.http_port, self.dicom_port = free_loopback_port(), free_loopback_port()
            while self.dicom_port == self.http_port:
                self.dicom_port = free_loopback_port()
            cfg = build_config(
                self.workdir,
                self.http_port,
                self.dicom_port,
                aet=self.aet,
                username=self.username,
                password=self.password,
                modalities=self._modalities(),
                strict_dicom=self.strict_dicom,
                extra=self.extra_config,
            )
            config_path = self.workdir / "orthanc.json"
            config_path.write_text(json.dumps(cfg, indent=2))
            log_path = self.workdir / "orthanc.log"
            log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
            self._log_file = log
            # Orthanc prints nothing on stdout; its log (glog style, W-level lines by
            # default) goes to stderr.  A file, not a pipe: a full pipe would block it.
            self.process = subprocess.Popen(
                _pdeathsig_prefix() + [ORTHANC_BINARY, str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
            try:
                self._wait_ready()
                self.start_seconds = time.monotonic() - t0
                return self
            except OrthancStartError as exc:
                last_error = exc
                self._kill_process()
                shutil.rmtree(self.workdir / "storage", ignore_errors=True)
                if "exited" not in str(exc):
                    break  # hung, not a port clash: do not retry
        self._cleanup_dir()
        raise last_error  # type: ignore[misc]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self.process.poll()
            if rc is not None:
                raise OrthancStartError(f"Orthanc exited with {rc} during start:\n{self._log()}")
            try:
                info = self.rest("GET", "/system", timeout=1.0)
                if info.get("DicomPort") == self.dicom_port:
                    return  # the DICOM SCP is started before the HTTP server
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise OrthancStartError(
                    f"Orthanc did not answer /system within {self.start_timeout} s:\n"
                    f"{self._log()}"
                )
            time.sleep(0.05)

    def _log(self) -> str:
        try:
            return (self.workdir / "orthanc.log").read_text(errors="replace")
        except OSError:
            return ""

    def _kill_process(self) -> None:
        p = self.process
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # graceful: Orthanc logs "Orthanc has stopped"
            try:
                p.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.process = None
        log = getattr(self, "_log_file", None)
        if log is not None:
            log.close()
            self._log_file = None

    def _cleanup_dir(self) -> None:
        if self.workdir is not None:
            self.log_text = self._log()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def stop(self) -> None:
        t0 = time.monotonic()
        self.returncode = self.process.poll() if self.process else None
        proc = self.process
        self._kill_process()
        if proc is not None:
            self.returncode = proc.returncode
        self._cleanup_dir()
        self.stop_seconds = time.monotonic() - t0

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    srv = OrthancServer(client_aets={"CALCI_SCU": None})
    with srv:
        print(f"started in {srv.start_seconds:.2f} s", srv.base_url, "DICOM", srv.dicom_port)
        print(srv.rest("GET", "/system"))
        wd = srv.workdir
    print(f"stopped in {srv.stop_seconds:.2f} s, rc={srv.returncode}, "
          f"workdir removed: {not wd.exists()}")
    print("--- Orthanc log ---")
    print(srv.log_text)
