"""The generated tables about the search: every study's cost, a study's trials, and how to
reproduce each champion from its study. Optuna and pandas are imported where a table reads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from models.registry import BUDGET

from .markdown import md, pct


def studies_table(results: Path, _: str = "") -> str:
    import optuna


    rows = []
    for db in sorted(results.glob("*.db")):
        url = f"sqlite:///{db}"
        for summary in optuna.get_all_study_summaries(url):
            study = optuna.load_study(study_name=summary.study_name, storage=url)
            trials = study.get_trials(deepcopy=False)
            states = Counter(t.state.name.lower() for t in trials)
            hours = sum((t.datetime_complete - t.datetime_start).total_seconds()
                        for t in trials if t.datetime_complete and t.datetime_start) / 3600
            settings = study.user_attrs.get("search", {})
            rows.append([f"`{summary.study_name}`", db.name,
                         f"{settings.get('budget', BUDGET):,}",
                         settings.get("epochs", "-"), len(trials), states["complete"],
                         states["pruned"], states["fail"] + states["running"], f"{hours:.1f}"])
    return md(["study", "database", "budget", "epochs", "trials", "trained to the end",
                "pruned", "failed or cut off", "trial hours"], rows, "llrrrrrrr")


def trials_table(results: Path, study: str) -> str:
    """A study's trained trials, best validation accuracy first, from its exported CSV
    (`python -m search export --study STUDY` writes results/STUDY-trials.csv)."""
    import pandas as pd

    trials = pd.read_csv(results / f"{study}-trials.csv")
    trials = trials[trials.status.isin(["complete", "pruned"])]
    trials = trials.sort_values(["value_val_acc", "user_attrs_params"], ascending=[False, True])
    rows = [[int(t.number), f"`{t.user_attrs_arch}`", f"{int(t.user_attrs_params):,}",
             len(json.loads(t.user_attrs_val_acc_per_epoch)), pct(t.value_val_acc), t.status]
            for t in trials.itertuples()]
    return md(["trial", "architecture", "params", "epochs", "val acc (last epoch)", "status"],
               rows, "rlrrrl")


def _study(results: Path, name: str):
    """(database file, study) of the study `name` in the results folder's databases."""
    import optuna

    for db in sorted(results.glob("*.db")):
        url = f"sqlite:///{db}"
        if name in {s.study_name for s in optuna.get_all_study_summaries(url)}:
            return db, optuna.load_study(study_name=name, storage=url)
    return None, None


def reproduce_table(results: Path, _: str = "") -> str:
    """Per champion: the study and trial that found it, what that study cost, and the commands
    that search it again, confirm its trial on seeds 1-10 and train it on the fresh seeds."""
    import pandas as pd

    from models import list_models
    from models.registry import FOUND_BY

    from .leaderboard import CHOSEN_SEEDS, FRESH_SEEDS, champions

    board = pd.read_csv(results / "leaderboard.csv")
    out = []
    for role, r in champions(board).items():
        found = r is not None and (FOUND_BY.get(r.model) or getattr(r, "found_by", None))
        if not isinstance(found, str) or ":" not in found:
            continue
        name, trial = found.rsplit(":", 1)
        db, study = _study(results, name)
        if study is None:
            continue
        trials = study.get_trials(deepcopy=False)
        hours = sum((t.datetime_complete - t.datetime_start).total_seconds()
                    for t in trials if t.datetime_complete and t.datetime_start) / 3600
        settings = study.user_attrs.get("search", {})
        storage = "" if db.name == "search.db" else f" --storage sqlite:///results/{db.name}"
        warm = "".join(f" --warm-start {w}" for w in study.user_attrs.get("warm_start", ()))
        lines = ["# the study, searched anew (another sampler seed samples other trials)"]
        if "fixed_params" in trials[int(trial)].system_attrs:  # queued by hand, not sampled
            lines.append(f"python experiments/handpicked.py --study {name}{storage}")
        lines.append(f"python -m search run --study {name}{storage} --budget "
                     f"{settings.get('budget', BUDGET)} --epochs {settings.get('epochs', 20)}"
                     f"{warm}")
        lines.append("# the committed trial on the test split, seeds 1-10, then the fresh seeds")
        lines.append(f"python -m search confirm --study {name}{storage} --trials {trial} "
                     f"--seeds {' '.join(map(str, CHOSEN_SEEDS))} --jobs 2")
        member = r.model if r.model in list_models() else f"'{r.arch}'"
        lines.append(f"python -m benchmarks mnist --model {member} "
                     f"--seeds {' '.join(map(str, FRESH_SEEDS))} --jobs 2")
        out.append(f"**{role}**, `{r.model}` ({int(r.params):,} params): trial {trial} of "
                   f"`{name}` ({db.name}; {len(trials)} trials, {hours:.1f} trial hours "
                   f"for the whole study)\n\n```bash\n" + "\n".join(lines) + "\n```\n")
    return "\n".join(out) or "(no champion from a study yet)\n"
