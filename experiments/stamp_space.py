"""Record in each study of a storage the pinned settings it lacks: `space`, the version of the
search space its trials were sampled from (search/versions.py), and `budget`, which a study that
does not record it ran under the zoo's 20,000 parameters. Run once per storage; a second run
changes nothing.

    python experiments/stamp_space.py sqlite:///results/search.db sqlite:///results/demo.db

A study whose trials come from more than one version (the space changed while it ran, or it
copied another study's trials) records the newest; one with no sampled trial, today's. A study
`search run` has not pinned yet (no "search" attribute) is left alone: its first run pins it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import optuna  # noqa: E402

from search import space  # noqa: E402
from search.storage import open_storage, safe_url  # noqa: E402
from search.versions import sampled_from  # noqa: E402

UNRECORDED_BUDGET = 20_000  # models.BUDGET, which every study ran under before it was a setting


def study_version(study: optuna.Study, task: str) -> int:
    """The newest version of `task`'s space that sampled a trial of `study` (today's if none)."""
    found = {sampled_from(t.params, task) for t in study.get_trials(deepcopy=False) if t.params}
    return max(found - {None}, default=space.VERSION[task])


def stamp(storage) -> list[str]:
    """Record the missing settings in every pinned study of `storage`; one line per study
    stamped, saying what it now records."""
    done = []
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        settings = study.user_attrs.get("search")
        if settings is None:
            continue
        missing = {}
        if "budget" not in settings:
            missing["budget"] = UNRECORDED_BUDGET
        if "space" not in settings:
            missing["space"] = study_version(study, settings["task"])
        if missing:
            study.set_user_attr("search", {**settings, **missing})
            done.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in missing.items()))
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("storages", nargs="+", metavar="URL", help="e.g. sqlite:///results/search.db")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for url in args.storages:
        done = stamp(open_storage(url, create=False))
        print(f"{safe_url(url)}: " + ("; ".join(done) if done else "every study records both"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
