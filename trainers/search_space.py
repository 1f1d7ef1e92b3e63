"""The hyperparameter search space of `python -m trainers.tune`: choice lists, bounds, and their
declaration on a keras-tuner `HyperParameters` object (conditional K for mixture priors, κ/ν for
constraint-based β controllers).
"""

from dataclasses import dataclass

from tfpriors._validation import check_positive_float, check_positive_int

__all__ = ["SearchSpace", "check_choices", "PRIORS", "SIZED_PRIORS", "CONTROLLERS",
           "CONSTRAINT_CONTROLLERS"]

PRIORS = ("standard_normal", "mog", "vampprior", "vhp")
SIZED_PRIORS = ("mog", "vampprior")
CONTROLLERS = ("constant", "warmup", "geco", "rewo", "rewo_sigmoid")
CONSTRAINT_CONTROLLERS = ("geco", "rewo", "rewo_sigmoid")


def check_choices(name, values, allowed):
    """Returns the distinct `values` in order; raises ValueError if empty or not all allowed."""
    if isinstance(values, str):
        values = [values]
    values = list(dict.fromkeys(values or []))
    if not values:
        raise ValueError(f"Expected at least one value in `{name}` (choices {list(allowed)}). "
                         f"Received: an empty list")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"Expected `{name}` values among {list(allowed)}. Received: {unknown}")
    return tuple(values)


def _check_range(name, bounds, check):
    """Returns (MIN, MAX) checked by `check`; raises ValueError unless 0 < MIN <= MAX."""
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise ValueError(f"Expected `{name}` to be two bounds MIN MAX. Received: {name}={bounds!r}")
    low, high = check(f"{name} MIN", bounds[0]), check(f"{name} MAX", bounds[1])
    if low > high:
        raise ValueError(f"Expected `{name}` bounds with MIN <= MAX. Received: MIN={low} > MAX={high}")
    return low, high


@dataclass(frozen=True)
class SearchSpace:
    """The searched hyperparameters: choice lists and (MIN, MAX) bounds.

    A range with MIN = MAX declares a fixed hyperparameter. Names of the declared
    hyperparameters equal the config keys they set: prior, components, latent_dim, beta,
    kappa, nu, learning_rate.
    """

    priors: tuple = PRIORS
    betas: tuple = ("constant", "warmup", "geco", "rewo")
    components: tuple = (5, 50)
    latent_dim: tuple = (2, 8)
    kappa: tuple = (0.01, 0.2)
    nu: tuple = (1.0, 10.0)
    learning_rate: tuple = (1e-4, 3e-3)

    def __post_init__(self):
        object.__setattr__(self, "priors", check_choices("priors", self.priors, PRIORS))
        object.__setattr__(self, "betas", check_choices("betas", self.betas, CONTROLLERS))
        for name, check in (("components", check_positive_int), ("latent_dim", check_positive_int),
                            ("kappa", check_positive_float), ("nu", check_positive_float),
                            ("learning_rate", check_positive_float)):
            object.__setattr__(self, name, _check_range(f"{name}_range", getattr(self, name), check))

    @classmethod
    def from_config(cls, config):
        """The search space given by the flags in a tune config dict."""
        return cls(priors=config["priors"], betas=config["betas"],
                   components=config["components_range"], latent_dim=config["latent_dim_range"],
                   kappa=config["kappa_range"], nu=config["nu_range"],
                   learning_rate=config["learning_rate_range"])

    def declare(self, hp):
        """Declares (or reads) the hyperparameters on `hp`; returns the active ones as config values."""
        values = {"prior": hp.Choice("prior", list(self.priors))}
        sized = [p for p in self.priors if p in SIZED_PRIORS]
        if sized:
            with hp.conditional_scope("prior", sized):
                values["components"] = _int(hp, "components", self.components, log=True)
        values["latent_dim"] = _int(hp, "latent_dim", self.latent_dim)
        values["beta"] = hp.Choice("beta", list(self.betas))
        constrained = [b for b in self.betas if b in CONSTRAINT_CONTROLLERS]
        if constrained:
            with hp.conditional_scope("beta", constrained):
                values["kappa"] = _float(hp, "kappa", self.kappa)
                values["nu"] = _float(hp, "nu", self.nu)
        values["learning_rate"] = _float(hp, "learning_rate", self.learning_rate)
        return {key: value for key, value in values.items() if value is not None}


def _int(hp, name, bounds, log=False):
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    return hp.Int(name, low, high, sampling="log" if log else "linear")


def _float(hp, name, bounds):
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    return hp.Float(name, low, high, sampling="log")
