"""One declared table of option rules (issue 23): every option has exactly one rule, which drives validation
(types first, then ranges, then the rules joining options), the CLI help and the generated reference; a
method's options live in its own typed class; equal runs have equal configs."""
import dataclasses
import json
import re
import typing
from pathlib import Path

import pytest

from cmkd_lab._validation import Rule, parse_assignments, parse_value
from cmkd_lab.distill import DistillConfig
from cmkd_lab.distill.config import CROSS_RULES, option_table, options_reference
from cmkd_lab.distill.methods import METHODS
from cmkd_lab.distill.methods.options import (check_method_options, config_for, option_fields, option_owner,
                                              relevant_options)

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ one rule per option
def test_every_config_field_has_exactly_one_rule_and_a_help():
    hints = typing.get_type_hints(DistillConfig)
    for f in dataclasses.fields(DistillConfig):
        assert isinstance(f.metadata.get("rule"), Rule), f.name
        assert f.metadata.get("help"), f.name
        origin = typing.get_origin(hints[f.name]) or hints[f.name]
        assert f.metadata["rule"].py_type is origin, f"{f.name}: rule type vs annotation {hints[f.name]}"


def test_every_method_option_has_exactly_one_rule_one_home_and_a_help():
    seen = {}
    for name, cls in METHODS.items():
        if cls.options is None:
            continue
        hints = typing.get_type_hints(cls.options)
        for key, f in cls.options.specs().items():
            assert key not in seen, f"{key} is declared by {seen[key]} and {name}"
            seen[key] = name
            assert isinstance(f.metadata.get("rule"), Rule) and f.metadata.get("help"), key
            assert f.metadata["rule"].py_type is hints[f.name], key
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    assert not fields & set(seen), "a method option must not also be a config field"
    assert set(option_fields()) == set(seen)
    table = option_table()
    assert list(table) == [f for f in fields_in_order() if f != "extra"] + list(option_fields())


def fields_in_order():
    return [f.name for f in dataclasses.fields(DistillConfig)]


def test_each_method_option_lives_with_its_method():
    # the options that were DistillConfig fields, each now in its method's typed class
    moved = {"kd_temperature": "kd", "kd_alpha": "kd", "fitnet_weight": "fitnet", "lambda_ent": "entmin",
             **{k: "ucmkd" for k in ("n1", "n2", "inner_optimizer", "inner_lr", "inner_weight_decay",
                                     "inner_lambdas", "first_order", "inner_scope")}}
    for k, m in moved.items():
        assert option_owner(k) == m and k in relevant_options(m)
    assert relevant_options("ce") == () and option_owner("lambda_fa") is None
    # cc-fa and proto share one declaration (weight + threshold), under their own prefixes
    assert METHODS["cc-fa"].options.__mro__[1] is METHODS["proto"].options.__mro__[1]
    assert relevant_options("cc-fa") == ("ccfa_weight", "ccfa_threshold")


def test_every_default_passes_its_rule():
    for name, row in option_table().items():
        row.rule.check(name, row.rule.coerce(name, row.default))


# ------------------------------------------------------------------ validation order
def test_types_are_checked_before_ranges_and_ranges_before_cross_rules():
    # the cross rule (student_unlabelled needs student_fraction < 1) used to speak first
    with pytest.raises(TypeError, match=r"^student_unlabelled must be true or false .*got student_unlabelled='false'"):
        DistillConfig(student_unlabelled="false")
    with pytest.raises(TypeError, match=r"^lr must be a number"):  # lr's type before epochs' range
        DistillConfig(epochs=0, lr="x")
    with pytest.raises(TypeError, match=r"^n1 must be an integer"):  # a method option's type before a range
        DistillConfig(epochs=0, n1=1.5)
    with pytest.raises(ValueError, match=r"^epochs must be >= 1"):  # the range before the warm-up rule
        DistillConfig(epochs=0, warmup_epochs=5)
    with pytest.raises(ValueError, match=r"^warmup_epochs must be < epochs"):
        DistillConfig(epochs=3, warmup_epochs=5)
    assert len(CROSS_RULES) == 3 and all(r.text for r in CROSS_RULES)


# ------------------------------------------------------------------ the help and the reference
def _flat(text):  # argparse re-wraps the help (also at hyphens)
    return re.sub(r"\s+", "", text)


def test_cli_help_shows_what_the_table_says(capsys):
    from cmkd_lab.cli import _CONFIG_FLAGS, main
    table = option_table()
    assert main(["run", "--help"]) == 0
    help_text = _flat(capsys.readouterr().out)
    for name in _CONFIG_FLAGS:
        assert _flat(table[name].describe()) in help_text, name
    assert main(["options"]) == 0
    listed = capsys.readouterr().out
    for name, row in table.items():
        assert f"{name}{f' [{row.method}]' if row.method else ''}: {row.describe()}" in listed
    assert main(["options", "--method", "ucmkd"]) == 0
    only = capsys.readouterr().out
    assert "inner_lr [ucmkd]" in only and "ccfa_threshold" not in only and "epochs:" in only


def test_reference_file_is_the_generated_text():
    text = options_reference()
    assert (ROOT / "docs" / "config_reference.md").read_text(encoding="utf-8") == text, \
        "regenerate docs/config_reference.md from cmkd_lab.distill.config.options_reference()"
    for name, row in option_table().items():
        assert f"| `{name}` |" in text and row.rule.describe().replace("|", "\\|") in text
    assert "TEACHER" not in text and "'permuted-classes'" in text


def test_teacher_control_names_have_one_home():
    from cmkd_lab.distill.config import TEACHER_CONTROLS
    from cmkd_lab.distill.teacher import TEACHER_CONTROLS as in_teacher
    from cmkd_lab.results.summary import CONTROLS
    assert in_teacher is TEACHER_CONTROLS and CONTROLS is TEACHER_CONTROLS
    assert option_table()["teacher_control"].rule.choices is TEACHER_CONTROLS


# ------------------------------------------------------------------ identity
def test_an_option_left_at_its_default_equals_one_given_at_its_default():
    plain = DistillConfig()
    for same in (DistillConfig(n1=1), DistillConfig(kd_temperature=4), DistillConfig(extra={"c2kd_tau": 0}),
                 DistillConfig.from_dict({"inner_lr": 1e-3, "ccfa_threshold": 0.9}), plain.replace(first_order=True)):
        assert same == plain and same.to_dict() == plain.to_dict() and same.extra == {}
    d = plain.to_dict()
    assert d["n1"] == 1 and d["c2kd_tau"] == 0.0 and "extra" not in d  # every option written, by its name
    assert DistillConfig.from_dict(json.loads(json.dumps(d))) == plain
    other = DistillConfig(n1=2, c2kd_tau=0.5)
    assert other.extra == {"c2kd_tau": 0.5, "n1": 2} and other != plain
    assert DistillConfig.from_dict(other.to_dict()) == other and other.n1 == 2 and other.inner_lr == 1e-3
    assert other.options_of("ucmkd").n1 == 2 and other.options_of("ce") is None


def test_with_defaults_reads_an_older_stored_config_in_todays_layout():
    # before issue 23: the ucmkd / kd / fitnet / entmin options were top-level fields, the others in extra,
    # and eval_test / audit_every did not exist
    old = {k: v for k, v in DistillConfig().to_dict().items()
           if k not in ("eval_test", "audit_every") and option_owner(k) not in ("c2kd", "cc-fa", "class-kd", "proto")}
    old["extra"] = {"c2kd_tau": 0.5}
    assert DistillConfig.with_defaults(old) == DistillConfig(c2kd_tau=0.5).to_dict()
    old["n1"] = 3
    assert DistillConfig.with_defaults(old) == DistillConfig(c2kd_tau=0.5, n1=3).to_dict()
    assert DistillConfig.with_defaults({**old, "zzz": 1})["zzz"] == 1  # unknown keys stay (and still differ)
    assert DistillConfig.with_defaults([1]) == [1]


def test_attribute_access_and_assignment_of_a_method_option():
    cfg = DistillConfig()
    assert cfg.inner_scope == "full" and cfg.kd_alpha == 0.5
    cfg.n1 = 3
    assert cfg.validate().extra == {"n1": 3}
    cfg.n1 = "many"
    with pytest.raises(TypeError, match=r"n1 must be an integer; got n1='many' of type str"):
        cfg.validate()
    with pytest.raises(AttributeError):
        DistillConfig().no_such_option
    import copy
    import pickle
    c = DistillConfig(n1=2)
    assert pickle.loads(pickle.dumps(c)) == c == copy.deepcopy(c)


def test_unknown_keyword_names_the_closest_option():
    with pytest.raises(TypeError, match=r"DistillConfig got unknown option\(s\) \['inner_rl'\] \('inner_rl': did "
                                        r"you mean 'inner_lr'\?\)"):
        DistillConfig(inner_rl=0.1)


# ------------------------------------------------------------------ another method's option
def test_config_for_keeps_only_the_methods_own_options():
    cfg = DistillConfig(ccfa_threshold=0.8, n1=2, lambda_fa=0.5)
    assert config_for("cc-fa", cfg).extra == {"ccfa_threshold": 0.8}
    assert config_for("ucmkd", cfg).extra == {"n1": 2}
    ce = config_for("ce", cfg)
    assert ce.extra == {} and ce.lambda_fa == 0.5 and ce == DistillConfig(lambda_fa=0.5)
    assert config_for("cc-fa", DistillConfig(ccfa_threshold=0.8)) == DistillConfig(ccfa_threshold=0.8)
    check_method_options("cc-fa", config_for("cc-fa", cfg))


def test_a_grid_applies_a_methods_options_to_its_own_runs_only(tmp_path):
    from cmkd_lab.experiments.engine import Cell, plan
    base = DistillConfig(epochs=1, teacher_epochs=1, ccfa_threshold=0.8)
    cells = [Cell("all", {}, base, {}, "all")]
    p = plan("synthetic", ["ce", "cc-fa", "proto[proto_weight=2]"], cells, [0], tmp_path, fast=True, baseline="ce",
             aa=False, diagnostics=None, early_epochs=0, threads=1)
    by = {j.label: j for j in p.jobs}
    assert by["ce"].config["ccfa_threshold"] == 0.9 and by["cc-fa"].config["ccfa_threshold"] == 0.8
    assert by["proto[proto_weight=2]"].config["proto_weight"] == 2.0
    assert by["proto[proto_weight=2]"].config["ccfa_threshold"] == 0.9
    assert by["ce"].identity["config"] == DistillConfig(epochs=1, teacher_epochs=1).to_dict()


def test_methods_read_their_options_from_their_typed_object(small_task):
    from cmkd_lab.distill import Trainer
    tr = Trainer(small_task, "ucmkd", DistillConfig(epochs=1, teacher_epochs=1, n1=2, inner_lr=0.05))
    assert (tr.method.opts.n1, tr.method.opts.inner_lr) == (2, 0.05)
    tr = Trainer(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1))
    assert tr.method.opts is None


# ------------------------------------------------------------------ key=value, once
def test_one_key_value_parser():
    assert parse_assignments(["a=1", " b = x ", "c=true", "d=[1, 2]", 'e="q"', "f=1e-3", "g=V→A"], what="--set") == \
        {"a": 1, "b": "x", "c": True, "d": [1, 2], "e": "q", "f": 1e-3, "g": "V→A"}
    assert parse_value(" null ") is None and parse_value("'false'") == "'false'"
    with pytest.raises(ValueError, match=r"^--set takes key=value; got 'eps'$"):
        parse_assignments(["eps"], what="--set")
    with pytest.raises(ValueError, match=r"^--set takes key=value, a key before each '='; got '=3'$"):
        parse_assignments(["=3"], what="--set")
    with pytest.raises(ValueError, match=r"^--set gives eps twice \(eps=0.1 and eps=0.2\); give each key once"):
        parse_assignments(["eps=0.1", "eps=0.2"], what="--set")
