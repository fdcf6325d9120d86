"""configs/*.yaml are generated: the committed files equal `neuript config write`'s output."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from neuript.cli import main
from neuript.config import from_dict
from neuript.config_files import FILES, render, yaml_text
from neuript.paths import REPO_ROOT


@pytest.mark.parametrize("name", list(FILES))
def test_committed_file_equals_the_generator(name):
    committed = (REPO_ROOT / "configs" / name).read_text(encoding="utf-8")
    assert committed == render(name), f"configs/{name} is stale: run `neuript config write`"


@pytest.mark.parametrize("name", list(FILES))
def test_file_reads_back_to_the_config_it_was_made_from(name):
    spec = FILES[name].build()
    assert from_dict(type(spec), yaml.safe_load(render(name))) == spec


def test_every_committed_yaml_has_a_generator():
    assert sorted(p.name for p in (REPO_ROOT / "configs").glob("*.yaml")) == sorted(FILES)


def test_every_field_appears_with_its_doc():
    @dataclasses.dataclass(frozen=True)
    class Inner:
        k: int = 3
        """Inner doc."""

    @dataclasses.dataclass(frozen=True)
    class Outer:
        a: tuple[int, ...] = (1, 2)
        """A doc."""
        b: str | None = None
        """B doc."""
        inner: Inner = dataclasses.field(default_factory=Inner)
        """Nested doc."""

    text = yaml_text(Outer(), "header")
    assert text.splitlines()[2:] == ["a: [1, 2]  # A doc.", "b: null  # B doc.",
                                     "# Nested doc.", "inner:", "  k: 3  # Inner doc."]


def test_cli_dump_prints_the_file(capsys):
    main(["config", "dump", "prepare_tcp.yaml"])
    assert capsys.readouterr().out == render("prepare_tcp.yaml")
    with pytest.raises(SystemExit) as exit_info:
        main(["config", "dump", "nope.yaml"])
    assert exit_info.value.code == 2 and "prepare_tcp.yaml" in capsys.readouterr().err


def test_option_sets_come_from_the_literal_type_hints():
    """Every Literal field is checked, with the allowed values read from its annotation."""
    from neuript.config import ModelConfig, MoEConfig, TrainConfig
    from neuript.errors import NeuriptError
    from neuript.train.finetune import FinetuneRunConfig

    for cls, field, allowed in ((ModelConfig, "pool_stats", "'mean', 'mean_logstd'"),
                                (MoEConfig, "gate", "'renorm', 'softmax'"),
                                (TrainConfig, "precision", "'fp32', 'bf16'"),
                                (FinetuneRunConfig, "scheme", "'functional', 'hemisphere'")):
        with pytest.raises(NeuriptError, match=f"{cls.__name__}.{field} must be one of {allowed}"):
            cls(**{field: "bogus"})
