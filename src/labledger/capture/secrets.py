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

# Anywhere in the name, any case: TF_VAR_db_pass, MY_PASSPHRASE, DB_PWD, GITHUB_TOKEN,
# aws_secret_access_key, APIKEY, ... A few harmless names match too (--num-passes,
# KEYBOARD): a false positive only hides a value, a false negative leaks one.
_SECRET_NAME = re.compile(
    r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE|CERT|DSN|WEBHOOK",
    re.IGNORECASE,
)
# allowlisted names that only look secret
_NOT_SECRET_NAMES = frozenset({"TOKENIZERS_PARALLELISM"})
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
    """The name contains pass, pwd, secret, token, key, credential, auth, ... (any case)."""
    return name.upper() not in _NOT_SECRET_NAMES and bool(_SECRET_NAME.search(name))


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# pieces a word splits into: Capitalised or lowercase runs, UPPERCASE runs, digit runs
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_BASE64ISH = re.compile(r"[A-Za-z0-9+/]+")


def _random_base64(word: str) -> bool:
    """A base64-style key (AWS secret access key, ...): 20+ chars of ``[A-Za-z0-9+/]`` (then
    ``=`` padding) mixing cases and digits in short pieces.

    Paths and names are told apart by the length of their pieces: ``VisionTransformer``
    splits into long words, a random key into pieces of 1-2 characters (for 40 random
    base64 characters the mean piece is under 3.0 in 99.9% of draws; for path-like words
    it is 3.3 and more), and most paths contain ``.``, ``_`` or ``-``, which keys do not.
    """
    core = word.rstrip("=")
    if len(core) < 20 or not _BASE64ISH.fullmatch(core):
        return False
    if not (re.search(r"[a-z]", core) and re.search(r"[A-Z]", core) and re.search(r"[0-9]", core)):
        return False
    pieces = _PIECE.findall(core)
    mean = sum(map(len, pieces)) / max(1, len(pieces))
    return mean < 3.25 and _entropy(core) > 3.5


def _words(value: str) -> list[str]:
    out: list[str] = []
    for word in re.split(r"[\s,;:]+", value):
        # `name=value` splits at its `=`; trailing `=` (base64 padding) stays on the value
        out.extend(w for w in re.split(r"=(?=[^=])", word) if w)
    return out


def looks_secret_value(value: str) -> bool:
    """A known credential shape, a URL with a password, or a long random-looking word
    (also with ``/``, ``+`` and ``=`` padding, as in AWS secret keys)."""
    if _SECRET_VALUE.search(value):
        return True
    for word in _words(value):
        # 32+ chars of mixed letters and digits with high entropy: an API key, not a path
        if (
            len(word) >= 32
            and "/" not in word
            and re.search(r"[0-9]", word)
            and re.search(r"[A-Za-z]", word)
            and _entropy(word) > 4.0
        ):
            return True
        if _random_base64(word):
            return True
    return False


# TF_* is TensorFlow's, but Terraform's command-line settings use the same prefix: they
# say nothing about a training run (TF_VAR_* values stay, filtered like any other)
_TERRAFORM = (
    "TF_CLI_*",
    "TF_LOG*",
    "TF_IN_AUTOMATION",
    "TF_INPUT",
    "TF_WORKSPACE",
    "TF_DATA_DIR",
    "TF_PLUGIN_CACHE_*",
    "TF_REGISTRY_*",
    "TF_TOKEN_*",
    "TF_STATE_PERSIST_INTERVAL",
    "TF_IGNORE",
    "TF_APPEND_USER_AGENT",
)


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
    extra = _patterns(setting("LABLEDGER_ENV_ALLOWLIST", env))[len(DEFAULT_ALLOWLIST) :]
    patterns = [*DEFAULT_ALLOWLIST, *extra]
    out: dict[str, str] = {}
    for name in sorted(env):
        if not _matches(name, patterns) or looks_secret_name(name):
            continue
        if _matches(name, list(_TERRAFORM)) and not _matches(name, extra):
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


def _secret_option(name: str) -> bool:
    return looks_secret_name(name.lstrip("-").replace("-", "_"))


def redact_argv(argv: list[str]) -> list[str]:
    """Command-line arguments with secret values replaced.

    ``--pass X``, ``--passphrase=X``, ``--api-token X``, ``-p``-style short options are
    not guessed; any option whose name contains pass/pwd/secret/token/key/credential/...
    has its value redacted (``--x=v`` and ``--x v``; in the second form the next
    argument is taken as the value unless it is itself a long option), and any argument
    shaped like a credential (a known token shape, a long random word, a base64 key with
    ``/`` or ``+``) is redacted wherever it appears.
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("--"):
                out.append(REDACTED)
                continue
        if arg.startswith("-") and "=" in arg:
            name, _, value = arg.partition("=")
            if _secret_option(name) or looks_secret_value(value):
                out.append(f"{name}={REDACTED}")
                continue
        elif arg.startswith("--") and _secret_option(arg):
            out.append(arg)
            hide_next = True
            continue
        if looks_secret_value(arg):
            out.append(REDACTED)
            continue
        out.append(arg)
    return out
