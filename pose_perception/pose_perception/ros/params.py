"""Node parameters declared from one table of ParamSpec: typed, described, ranged, validated on change.

A bad value (out of range, not a choice, wrong type) is refused with a message saying what is allowed.

Parameters that set a field of a pipeline's config dataclass are made with config_param(): the default comes from
the dataclass (a node may override it, saying why), and config_from_params() builds the config from the table, so
a field is never copied by hand. Such a config is built when the node is configured, so these parameters are
read-only at run time unless the node applies a change itself (read_only=False, handled in
PerceptionNode.on_parameters_changed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    read_only: bool = False
    config: Optional[type] = None  # config dataclass this parameter sets a field of (config_param)
    field: Optional[str] = None  # that field, dotted for nested configs ("cluster.eps_m")
    to_config: Optional[Callable[[Any], Any]] = None  # parameter value -> field value (e.g. "" -> None)

    def check(self, value: Any) -> Optional[str]:
        """None if value is acceptable, else the reason it is not."""
        if isinstance(self.default, bool) != isinstance(value, bool):
            return f"'{self.name}' must be a bool, got {value!r}"
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"'{self.name}' must be a number, got {value!r}"
            if self.min is not None and value < self.min:
                return f"'{self.name}' = {value} is below its minimum {self.min}"
            if self.max is not None and value > self.max:
                return f"'{self.name}' = {value} is above its maximum {self.max}"
        if self.choices is not None and value not in self.choices:
            return f"'{self.name}' = {value!r} is not one of {list(self.choices)}"
        return None

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of {list(self.choices)}." if self.choices else "")
        # dynamic_typing: a YAML "rate: 5" for a float parameter is accepted (check() validates the type).
        d = ParameterDescriptor(description=text, read_only=self.read_only, dynamic_typing=True)
        if self.min is not None and self.max is not None and not isinstance(self.default, bool):
            if isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(self.min), to_value=int(self.max), step=0)]
            elif isinstance(self.default, float):
                d.floating_point_range = [
                    FloatingPointRange(from_value=float(self.min), to_value=float(self.max), step=0.0)
                ]
        return d


_FROM_CONFIG: Any = object()


def config_default(config_cls: type, path: str) -> Any:
    """Default of the (dotted) field `path` of dataclass config_cls."""
    cls, value = config_cls, None
    for part in path.split("."):
        found = {f.name: f for f in dataclasses.fields(cls)}.get(part)
        if found is None:
            raise AttributeError(f"{cls.__name__} has no field '{part}' (parameter table out of date?)")
        if found.default is not dataclasses.MISSING:
            value = found.default
        elif found.default_factory is not dataclasses.MISSING:
            value = found.default_factory()
        else:
            raise AttributeError(f"{cls.__name__}.{part} has no default")
        cls = type(value)
    return value


def config_param(
    config_cls: type,
    name: str,
    description: str,
    field: Optional[str] = None,
    default: Any = _FROM_CONFIG,
    *,
    min: Optional[float] = None,
    max: Optional[float] = None,
    choices: Optional[Sequence[Any]] = None,
    read_only: bool = True,
    to_config: Optional[Callable[[Any], Any]] = None,
) -> ParamSpec:
    """A parameter setting field `field` (default: `name`) of config_cls; its default is the field's unless given."""
    field = field or name
    value = config_default(config_cls, field) if default is _FROM_CONFIG else default
    return ParamSpec(
        name,
        value,
        description,
        min=min,
        max=max,
        choices=choices,
        read_only=read_only,
        config=config_cls,
        field=field,
        to_config=to_config,
    )


def config_from_params(config_cls: type, specs: Sequence[ParamSpec], values: dict[str, Any], base: Any = None) -> Any:
    """config_cls (or `base`, one of its instances) with every field the table's parameters set for it."""
    config = base if base is not None else config_cls()
    for spec in specs:
        if spec.config is not config_cls or spec.field is None:
            continue
        value = values[spec.name]
        config = _replace_path(config, spec.field.split("."), spec.to_config(value) if spec.to_config else value)
    return config


def _replace_path(obj: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})


def split_list(text: str) -> tuple[str, ...]:
    """ "a, b,c" -> ("a", "b", "c"): list parameters given as one comma-separated string."""
    return tuple(s.strip() for s in str(text).split(",") if s.strip())


class ParameterValueError(ValueError):
    """A parameter file or override gave a value the node cannot use."""


def declare_parameters(
    node: Node, specs: Sequence[ParamSpec], on_changed: Optional[Callable[[set[str]], None]] = None
) -> dict[str, Any]:
    """Declare every spec on node, validate the start-up values, keep the returned dict current on change;
    on_changed(names) is called after an accepted change, with the values already updated."""
    by_name = {s.name: s for s in specs}
    values: dict[str, Any] = {}
    for spec in specs:
        override = getattr(node, "_parameter_overrides", {}).get(spec.name)
        if override is not None and spec.check(override.value):
            raise ParameterValueError(f"{node.get_name()}: {spec.check(override.value)}")
        try:
            value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            # rclpy checks descriptor ranges itself; say it in our words, with the allowed range.
            raise ParameterValueError(f"{node.get_name()}: {exc}") from exc
        if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = spec.check(value)
        if problem:
            raise ParameterValueError(f"{node.get_name()}: {problem}")
        values[spec.name] = value
    _warn_unknown_overrides(node, by_name)

    def on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            problem = spec.check(p.value)
            if problem:
                node.get_logger().error(f"refused parameter change: {problem}")
                return SetParametersResult(successful=False, reason=problem)
        for p in params:
            if p.name in by_name:
                spec = by_name[p.name]
                values[p.name] = float(p.value) if isinstance(spec.default, float) else p.value
        if on_changed is not None:
            on_changed({p.name for p in params if p.name in by_name})
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


def _warn_unknown_overrides(node: Node, by_name: dict) -> None:
    """A parameter file or -p override naming a parameter the node does not have is ignored by rclpy without a
    word: say so, with the closest name (a typo like score_treshold otherwise looks like a setting that works)."""
    import difflib

    for name in sorted(getattr(node, "_parameter_overrides", {})):
        if name in by_name or node.has_parameter(name) or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        node.get_logger().warning(f"ignoring parameter '{name}': {node.get_name()} has no such parameter{hint}")
