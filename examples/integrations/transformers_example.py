"""Hugging Face Trainer + labledger: a 2-layer BERT built from a config, on token ids."""

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from labledger.integrations.transformers import LabledgerCallback  # labledger


class TokenIds(torch.utils.data.Dataset):
    """Random token ids (no tokenizer); the label says whether token 7 occurs."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 30, (n, 12), generator=g)
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(12, dtype=torch.long),
            "labels": self.labels[i],
        }


def main(output_dir: str = "hf-output", steps: int = 8):
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=8,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    cb = LabledgerCallback(project="integrations-transformers")  # labledger
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=TokenIds(64, 0),
        eval_dataset=TokenIds(32, 1),
        callbacks=[cb],  # labledger
    )
    trainer.train()
    return cb.run


if __name__ == "__main__":
    main()
