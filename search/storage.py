"""Where studies live: an Optuna RDB storage, by default the SQLite file results/search.db,
or any SQLAlchemy URL (PostgreSQL for many workers on many machines); opened with clear errors,
heartbeat and retries, and a waiting trial handed to exactly one worker.
"""

from __future__ import annotations

import os
import random
import shlex
import time
from datetime import datetime
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from errors import UserError

MAX_RETRY = 3  # a trial whose worker died is re-run at most this many times


class StorageError(UserError):
    """A storage URL that cannot be opened, or a study that is not in it."""


def default_storage() -> str:
    """sqlite:///<results dir>/search.db (the results dir honours $NAS_RESULTS)."""
    from benchmarks.harness import results  # read at call time: tests point it elsewhere

    return f"sqlite:///{Path(results.RESULTS_DIR) / 'search.db'}"


def storage_flag(url: str | None) -> str:
    """' --storage URL' for a hint's command when a URL was given (else ''), so the command
    runs on the storage it was printed for; a password stays masked."""
    return f" --storage {shlex.quote(safe_url(url))}" if url else ""


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL has no password we could find
        return url


def _retry_callback():
    # Optuna 4.9 renamed RetryFailedTrialCallback and its storage argument; support both.
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is not None:
        return "heartbeat_stale_trial_callback", cls(max_retry=MAX_RETRY)
    return "failed_trial_callback", optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters again, the way a heartbeat-stale trial is retried."""
    _retry_callback()[1](study, trial)


class Storage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, with a waiting trial (enqueued, or queued again after a failure)
    handed to exactly one worker.

    Study.ask pops a waiting trial by reading its state and then writing RUNNING. Optuna makes
    that atomic with SELECT ... FOR UPDATE, which SQLite ignores: two threads of `--jobs 2`, or
    two processes, that ask at the same moment both get the trial and train it twice, and the
    second to finish crashes its worker (optuna/optuna#4621; seen here: both threads of a
    `--jobs 2` run trained trial 45). Here the pop is one compare-and-set UPDATE ... WHERE
    state = 'WAITING', atomic on every database; a lost race is the False Optuna expects.
    """

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values=None) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        from optuna.storages._rdb import models  # the table Optuna itself writes

        trials = models.TrialModel
        with self.engine.begin() as connection:
            won = connection.execute(
                sqlalchemy.update(trials)
                .where(trials.trial_id == trial_id, trials.state == TrialState.WAITING)
                .values(state=TrialState.RUNNING, datetime_start=datetime.now())).rowcount
        # Lost (or never waiting): Optuna's own answer, False or UpdateFinishedTrialError.
        return bool(won) or super().set_trial_state_values(trial_id, state)


def open_storage(url: str | None = None, heartbeat: int | None = None,
                 create: bool = True) -> optuna.storages.RDBStorage:
    """An RDBStorage for `url` (default: the SQLite file), with heartbeat when asked for."""
    given, url = url, url or default_storage()
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _check_sqlite_file(url[len("sqlite:///"):].split("?")[0], create, storage_flag(given))
    # SQLite: wait for the file lock instead of failing when workers write at once.
    # Servers: check pooled connections, which die when a server restarts.
    engine = ({"connect_args": {"timeout": 60}} if url.startswith("sqlite")
              else {"pool_pre_ping": True})
    kwargs = {}
    if heartbeat:
        name, callback = _retry_callback()
        kwargs = dict(heartbeat_interval=heartbeat, grace_period=2 * heartbeat, **{name: callback})
    try:
        for attempt in range(5):
            try:
                return Storage(url, engine_kwargs=engine, **kwargs)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # Workers that start together on a fresh PostgreSQL database race to create
                # Optuna's tables; the losers find them made a moment later.
                if attempt == 4:
                    raise
                time.sleep(0.5 + random.random())
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {safe_url(url)}: {why}\n  expected an "
                           "Optuna storage URL such as sqlite:///results/search.db or "
                           "postgresql+psycopg://user:password@host:5432/dbname") from None


def _check_sqlite_file(text: str, create: bool, flag: str = "") -> None:
    """The SQLite file of a storage URL: there to read (create=False), or a file this user can
    write, in a folder it can write (SQLite's journal goes beside it), made if missing. `flag`:
    the --storage option of the hint to create it."""
    if not text or "\0" in text:
        raise StorageError(f"invalid storage URL sqlite:///{text!r}: expected "
                           "sqlite:///PATH/TO/FILE.db")
    path = Path(text)
    try:
        if not create and not path.is_file():
            raise StorageError(f"no search storage at {path} (run `python -m search run{flag}` "
                               "first, or pass --storage URL)")
        if not create:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():
            raise StorageError(f"cannot use {path} as search storage: it is not a file")
        for what, where in (("file", path), ("folder", path.parent)):
            if where.exists() and not os.access(where, os.W_OK):
                raise StorageError(f"cannot write the search storage {path}: its {what} "
                                   f"{where} is read-only for this user")
    except OSError as e:
        raise StorageError(f"cannot use {path} as search storage: {e.strerror or e}") from None
