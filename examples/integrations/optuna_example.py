"""Optuna + labledger: a study as a parent run, each trial a child run (pruned ones too)."""

import optuna

from labledger.integrations.optuna import LabledgerCallback  # labledger


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 0, 3)
    value = 0.0
    for step in range(3):
        value = (x - 2) ** 2 + y + 1.0 / (step + 1)
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def main(n_trials: int = 12):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="quadratic",
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    cb = LabledgerCallback(project="integrations-optuna")  # labledger
    study.optimize(cb.track(objective), n_trials=n_trials, callbacks=[cb])  # labledger
    cb.finish()  # labledger
    return study, cb.run


if __name__ == "__main__":
    main()
