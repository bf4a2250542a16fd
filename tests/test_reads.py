"""What each job reads of the config (memcurv.jobs.reads): a job reading a section its verb does not declare fails,
and the settings hash changes with the sections a verb reads and with nothing else."""

import dataclasses

import pytest

from memcurv import cli, io
from memcurv.config import validate
from memcurv.jobs import reads

CFG = validate({"study": "reads", "dataset": {"name": "synthetic"}})


def test_a_section_a_verb_does_not_read_fails_when_read_and_is_left_out_of_its_settings():
    cfg = reads.restrict(CFG, "train-subsets")
    assert cfg.memorization.num_models == CFG.memorization.num_models  # declared: read as before
    with pytest.raises(RuntimeError, match=r"train-subsets.*mem_vs_epsilon\.top_k.*memcurv\.jobs\.reads"):
        _ = cfg.mem_vs_epsilon.top_k
    assert set(CFG.as_dict()) - set(cfg.as_dict()) == {"dp_models", "mem_vs_epsilon", "audit", "figures", "claims"}
    assert dataclasses.replace(cfg) is not None  # copying the config does not count as reading a section


def _one_number_changed(section: str):
    """The section of CFG with its first numeric setting changed."""
    value = getattr(CFG, section)
    field = next(f.name for f in dataclasses.fields(value) if type(getattr(value, f.name)) in (int, float))
    return dataclasses.replace(value, **{field: getattr(value, field) + 1})


@pytest.mark.parametrize("verb", sorted(reads.READS))
def test_every_declared_verb_is_a_verb_and_its_hash_follows_only_what_it_reads(verb):
    assert verb in cli.VERBS
    before = io.config_hash(reads.restrict(CFG, verb))
    for section in reads.OPTIONAL:
        changed = io.config_hash(reads.restrict(dataclasses.replace(CFG, **{section: _one_number_changed(section)}),
                                                verb))
        assert (changed != before) == (section in reads.sections_read(verb)), section
    other_model = dataclasses.replace(CFG, model="resnet18")
    assert io.config_hash(reads.restrict(other_model, verb)) != before  # a shared section: every verb reads it


def test_calibrate_reads_the_section_of_the_experiment_it_calibrates():
    assert reads.sections_read("calibrate", "audit") == ("audit",)
    with pytest.raises(ValueError, match="experiment"):
        reads.sections_read("calibrate")
    assert io.config_hash(reads.restrict(CFG, "report")) == io.config_hash(CFG)  # undeclared verbs read everything
