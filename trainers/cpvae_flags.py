"""The CP-VAE's encoder, decoder and cluster-start flags of `trainers.train`/`trainers.tune`.

The choices are the model's own (`CPVAE.Z_INPUTS`, `CPVAE.DECODER_INPUTS`), so the command line and
the constructor cannot disagree; the GMM start's flags come from `trainers.cpvae_init`.
"""

from trainers.cpvae import CPVAE
from trainers.cpvae_init import add_gmm_init_flags

__all__ = ["add_cpvae_flags"]


def add_cpvae_flags(group):
    """Adds --cpvae-z-input, --cpvae-decoder-input and the GMM start's flags to an argparse group."""
    group.add_argument("--cpvae-z-input", choices=list(CPVAE.Z_INPUTS), default="probabilities",
                       help="cpvae: what q(z|x, c) takes beside h(x): the category probabilities "
                            "pi(x) (the paper's Fig. 2; one q(z|x) for every c, so the KL term ties "
                            "q(c|x) to the component p(z|c) the encoding lies in) or the sampled "
                            "one-hot category (one Gaussian per category)")
    group.add_argument("--cpvae-decoder-input", choices=list(CPVAE.DECODER_INPUTS),
                       default="z_and_c",
                       help="cpvae: what the decoder takes: z and c (the paper's p(x|z, c)) or z "
                            "alone (p(x|z), as in VaDE; c then reaches the bound only through the "
                            "prior terms, so q(c|x) follows the mixture component of the encoding)")
    add_gmm_init_flags(group)
