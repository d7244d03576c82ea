"""Hydra + labledger: the callback in hydra_conf/config.yaml records each job as a run."""

from pathlib import Path

import hydra
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

import labledger


@hydra.main(version_base=None, config_path="hydra_conf", config_name="config")
def main(cfg: DictConfig) -> float:
    run = labledger.active_run()  # labledger: the run the callback started for this job
    rows = Path(to_absolute_path(cfg.data.train)).read_text().split()[1:]  # x,y lines
    loss = (cfg.lr - 0.1) ** 2 + cfg.model.depth * 0.01 + 0.0 * len(rows)
    for step in range(3):
        run.log({"loss": loss / (step + 1)})  # labledger
    return loss


if __name__ == "__main__":
    main()
