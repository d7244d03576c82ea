"""What may be stored from the process environment, and how credentials are kept out.

Policy (see docs/capture.md):

- only variables on an allowlist are recorded (names that change results: CUDA_*,
  PYTHONHASHSEED, OMP_NUM_THREADS, ...), extendable with ``LABLEDGER_ENV_ALLOWLIST``
  (comma-separated names, ``PREFIX*`` for a prefix);
- a variable whose *name* looks secret (TOKEN, SECRET, PASSWORD, KEY, CREDENTIAL,
  AUTH, ...) is never recorded, even when allowlisted;
- a variable whose *value* looks like a credential (a known token shape, a URL with a
  password, a long high-entropy string) is never recorded either;
- URLs (git remotes) lose their ``user:password@`` part and secret-looking query
  parameters.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._settings import setting

__all__ = [
    "DEFAULT_ALLOWLIST",
    "allowed_env_vars",
    "looks_secret_name",
    "looks_secret_value",
    "redact_argv",
    "strip_url_credentials",
]

DEFAULT_ALLOWLIST: tuple[str, ...] = (
    "CUDA_*",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDNN_*",
    "PYTHONHASHSEED",
    "PYTHONOPTIMIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "TF_*",
    "TORCH_*",
    "PYTORCH_*",
    "NCCL_*",
    "XLA_*",
    "JAX_*",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "MASTER_PORT",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_NNODES",
    "SLURM_NTASKS",
    "SLURM_CPUS_PER_TASK",
    "SLURM_JOB_PARTITION",
    "PBS_JOBID",
    "LSB_JOBID",
    "KUBERNETES_SERVICE_HOST",
)

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSWD|PWD$|_KEY|KEY_|^KEY$|APIKEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|"
    r"SIGNATURE|CERT|DSN|WEBHOOK",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{16,}"  # GitLab
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|sk-[A-Za-z0-9_-]{16,}"  # OpenAI-style
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",  # URL with a password
)
_SECRET_QUERY = re.compile(
    r"token|secret|key|sig|signature|password|auth|credential", re.IGNORECASE
)


def looks_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_secret_value(value: str) -> bool:
    """A known credential shape, a URL with a password, or a long random-looking word."""
    if _SECRET_VALUE.search(value):
        return True
    for word in re.split(r"[\s,;:=]+", value):
        # 32+ chars of mixed letters and digits with high entropy: an API key, not a path
        if (
            len(word) >= 32
            and "/" not in word
            and re.search(r"[0-9]", word)
            and re.search(r"[A-Za-z]", word)
            and _entropy(word) > 4.0
        ):
            return True
    return False


def _patterns(extra: str | None) -> list[str]:
    pats = list(DEFAULT_ALLOWLIST)
    if extra:
        pats.extend(p.strip() for p in extra.split(",") if p.strip())
    return pats


def _matches(name: str, patterns: list[str]) -> bool:
    for p in patterns:
        if p.endswith("*"):
            if name.startswith(p[:-1]):
                return True
        elif name == p:
            return True
    return False


def allowed_env_vars(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowlisted, non-secret variables of ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    patterns = _patterns(setting("LABLEDGER_ENV_ALLOWLIST", env))
    out: dict[str, str] = {}
    for name in sorted(env):
        if not _matches(name, patterns) or looks_secret_name(name):
            continue
        value = env[name]
        if looks_secret_value(value):
            continue
        out[name] = value
    return out


def strip_url_credentials(url: str) -> str:
    """``https://user:token@host/x?token=y`` -> ``https://host/x``; scp-style URLs are kept."""
    url = url.strip()
    if "://" not in url:
        # git@host:org/repo.git carries no secret (the key lives in ~/.ssh)
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not _SECRET_QUERY.search(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


REDACTED = "<redacted>"


def redact_argv(argv: list[str]) -> list[str]:
    """Command-line arguments with secret values replaced (``--api-token X``, ``--key=X``, bare tokens)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            out.append(REDACTED)
            continue
        if arg.startswith("-") and "=" in arg:
            name, _, value = arg.partition("=")
            if looks_secret_name(name.lstrip("-").replace("-", "_")) or looks_secret_value(value):
                out.append(f"{name}={REDACTED}")
                continue
        elif arg.startswith("--") and looks_secret_name(arg[2:].replace("-", "_")):
            out.append(arg)
            hide_next = True
            continue
        if looks_secret_value(arg):
            out.append(REDACTED)
            continue
        out.append(arg)
    return out
