"""PyTorch Lightning + labledger: a small regression model on generated data."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from labledger.integrations.lightning import LabledgerLogger  # labledger


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def data(n: int = 256, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32)


def main(epochs: int = 3, **trainer_kwargs):
    pl.seed_everything(7)
    logger = LabledgerLogger(project="integrations-lightning")  # labledger
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,  # labledger
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        **trainer_kwargs,
    )
    trainer.fit(Regressor(), data(), data(seed=1))
    return logger.experiment


if __name__ == "__main__":
    main()
