"""bayes_mogp/memory.py: the one memory refusal the size checks share (the MILE and SG-MCMC draws)."""

import pytest

from bayes_mogp import memory
from bayes_mogp.errors import InputError


def test_require_memory_refuses_over_the_fraction_with_both_sizes_and_the_remedy(monkeypatch):
    monkeypatch.setattr(memory, "physical_memory", lambda: 8 * 2**30)
    memory.require_memory(3.9 * 2**30, "the draws", "raise thin")  # under half: no refusal
    with pytest.raises(InputError, match=r"^the draws need about 4\.5 GiB, over 50% of this machine's 8\.0 GiB; "
                                         r"raise thin$"):
        memory.require_memory(4.5 * 2**30, "the draws", "raise thin")
    memory.require_memory(4.5 * 2**30, "the draws", "raise thin", fraction=0.6)
    monkeypatch.setattr(memory, "physical_memory", lambda: None)  # unknown: never refused
    memory.require_memory(1e18, "the draws", "raise thin")


@pytest.mark.parametrize("method", ["mile", "sghmc"])
def test_bnn_size_checks_refuse_draws_over_half_the_memory(monkeypatch, method):
    from bayes_mogp.bnn import mile, sgmcmc
    from bayes_mogp.bnn.models import BNNConfig

    monkeypatch.setattr(memory, "physical_memory", lambda: 2**30)  # 1 GiB
    config = BNNConfig(d_in=784, d_out=10, widths=(2000, 2000), prior="horseshoe")  # about 5.6 M parameters
    if method == "mile":
        settings = mile.MileSettings(num_members=8, sampling_steps=5000, thin=50)  # 800 draws: about 17 GiB
        check = mile.check_size
    else:
        settings = sgmcmc.MinibatchSettings(method="sghmc", num_epochs=100, batch_size=100)
        check = sgmcmc.check_size
    with pytest.raises(InputError, match=r"need about .* GiB, over 50% of this machine's 1\.0 GiB; keep fewer draws"):
        check(config, 60000, settings)
