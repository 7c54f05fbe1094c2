"""Population model files (``mipd-model/1``): loading, validation and evaluation of parameters.

The loader checks everything it can before a model is used: known names in every expression, the
parameters each structure needs, a symmetric positive definite omega, outputs that observe real
compartments, routes that enter real compartments, and a sanity evaluation of the typical patient.
Every error names the field path (``parameters.CL: unknown name 'CRCLL'``).
"""

from __future__ import annotations

import json
import keyword
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .domain import ModelDomain, parse_domain
from .errors import ModelError, ParameterValueError
from .expressions import CompiledBlock, compile_block

FORMAT = "mipd-model/1"
ERROR_MODELS = ("additive", "proportional", "combined", "exponential")
VARIATIONS = ("baseline", "carried_forward", "interpolated")

# Presets with NONMEM ADVAN parameter names: compartments and first-order flows (from, to, rate).
_PRESETS: dict[str, tuple[tuple[str, ...], list[tuple[str, str | None, str]], dict[str, str]]] = {
    "1cmt": (("central",), [("central", None, "CL/V")], {"central": "V"}),
    "2cmt": (
        ("central", "peripheral"),
        [("central", None, "CL/V1"), ("central", "peripheral", "Q/V1"), ("peripheral", "central", "Q/V2")],
        {"central": "V1", "peripheral": "V2"},
    ),
    "3cmt": (
        ("central", "peripheral", "peripheral2"),
        [
            ("central", None, "CL/V1"),
            ("central", "peripheral", "Q2/V1"),
            ("peripheral", "central", "Q2/V2"),
            ("central", "peripheral2", "Q3/V1"),
            ("peripheral2", "central", "Q3/V3"),
        ],
        {"central": "V1", "peripheral": "V2", "peripheral2": "V3"},
    ),
}
_PRESET_PARAMETERS = {
    "1cmt": ("CL", "V"),
    "2cmt": ("CL", "V1", "Q", "V2"),
    "3cmt": ("CL", "V1", "Q2", "V2", "Q3", "V3"),
}


@dataclass(frozen=True)
class CovariateSpec:
    name: str
    unit: str = ""
    type: str = "continuous"  # "continuous" | "boolean" | "categorical"
    min: float | None = None
    max: float | None = None
    reference: float | None = None
    description: str = ""
    # How the covariate may change within a course: "baseline" (fixed at the start, e.g. a patient-level
    # flag), "carried_forward" (the last value holds until the next) or "interpolated" (linear between
    # measurements). Case files are piecewise constant whatever the variation; see docs/model-format.md.
    variation: str = "carried_forward"

    def typical_value(self) -> float | None:
        """A value inside the declared range, used for the model's load-time sanity evaluation."""
        if self.reference is not None:
            return self.reference
        if self.type == "boolean":
            return 0.0
        if self.min is not None and self.max is not None:
            return 0.5 * (self.min + self.max)
        return None


@dataclass(frozen=True)
class ErrorModel:
    """Residual error of one output; see :func:`ErrorModel.variance`."""

    model: str
    additive: float = 0.0
    proportional: float = 0.0

    def variance(self, prediction: np.ndarray) -> np.ndarray:
        """Residual variance at predictions ``f`` (NONMEM's W² with W = F + DEL where F == 0).

        For the exponential model the variance is on the log scale.
        """
        if self.model == "additive":
            return np.full_like(prediction, self.additive**2, dtype=float)
        if self.model == "exponential":
            return np.full_like(prediction, self.additive**2, dtype=float)
        # A prediction of exactly 0 gets W = 1 (NONMEM's IF (F.EQ.0) DEL=1) so that the likelihood stays
        # defined before an absorption lag has elapsed.
        f = np.where(prediction == 0.0, 1.0, prediction)
        proportional_var = (self.proportional * f) ** 2
        if self.model == "proportional":
            return proportional_var
        return self.additive**2 + proportional_var


def parse_error_model(path: str, doc: Any) -> ErrorModel:
    """An ``error`` object (an output's, or one observation's in a case file); ModelError names the field."""
    if not isinstance(doc, Mapping):
        raise ModelError(path, "expected an object with 'model'")
    kind = doc.get("model")
    if kind not in ERROR_MODELS:
        raise ModelError(f"{path}.model", f"unknown error model '{kind}' ({', '.join(ERROR_MODELS)})")
    values = {}
    for key in ("additive", "proportional"):
        value = doc.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ModelError(f"{path}.{key}", f"expected a number >= 0, got {value!r}")
        values[key] = float(value)
    needs = {"additive": ("additive",), "exponential": ("additive",), "proportional": ("proportional",)}
    for key in needs.get(kind, ()):
        if values[key] <= 0:
            raise ModelError(f"{path}.{key}", f"the {kind} error model needs a positive '{key}'")
    if kind == "combined" and values["additive"] <= 0 and values["proportional"] <= 0:
        raise ModelError(path, "the combined error model needs a positive additive or proportional part")
    return ErrorModel(kind, values["additive"], values["proportional"])


@dataclass(frozen=True)
class OutputSpec:
    name: str
    compartment: int
    volume: str  # name of the block output holding the volume (or scale divisor)
    scale: float
    unit: str
    error: ErrorModel


@dataclass(frozen=True)
class LinearFlow:
    source: int
    target: int | None
    rate: str  # block output name


@dataclass(frozen=True)
class SaturableFlow:
    source: int
    target: int | None
    vmax: str
    km: str
    volume: str


@dataclass(frozen=True)
class InputSpec:
    bioavailability: str | None
    lag_h: str | None
    duration_h: str | None


@dataclass(frozen=True)
class PDModel:
    model: str
    expressions: Mapping[str, str]


@dataclass(frozen=True)
class PopulationModel:
    """A validated population model. Build it with :func:`load_model` or :func:`parse_model`."""

    id: str
    drug: str
    title: str
    citation: Mapping[str, Any]
    document: Mapping[str, Any]
    thetas: Mapping[str, float]
    covariates: Mapping[str, CovariateSpec]
    eta_names: tuple[str, ...]
    omega: np.ndarray
    kappa_names: tuple[str, ...]
    iov_omega: np.ndarray | None
    compartments: tuple[str, ...]
    linear_flows: tuple[LinearFlow, ...]
    saturable_flows: tuple[SaturableFlow, ...]
    inputs: Mapping[int, InputSpec]
    routes: Mapping[str, tuple[int, ...]]
    outputs: Mapping[str, OutputSpec]
    parameter_names: tuple[str, ...]
    volume_names: frozenset[str]
    block: CompiledBlock = field(repr=False)
    field_paths: Mapping[str, str] = field(default_factory=dict, repr=False)
    pd: PDModel | None = None
    population: Mapping[str, Any] = field(default_factory=dict)
    domain: ModelDomain | None = None

    @property
    def baseline_covariates(self) -> tuple[str, ...]:
        """Covariates fixed for a course: a case may not change them after time 0."""
        return tuple(name for name, spec in self.covariates.items() if spec.variation == "baseline")

    @property
    def n_compartments(self) -> int:
        return len(self.compartments)

    @property
    def is_linear(self) -> bool:
        return not self.saturable_flows

    @property
    def n_eta(self) -> int:
        return len(self.eta_names)

    @property
    def n_kappa(self) -> int:
        return len(self.kappa_names)

    @property
    def default_output(self) -> str:
        return next(iter(self.outputs))

    def compartment_index(self, name: str, *, path: str = "compartment") -> int:
        try:
            return self.compartments.index(name)
        except ValueError:
            raise ModelError(
                path, f"unknown compartment '{name}' (model has {', '.join(self.compartments)})"
            ) from None

    def evaluate(
        self,
        covariates: Mapping[str, Any],
        eta: np.ndarray | None = None,
        kappa: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Evaluate every parameter and derived quantity.

        Parameters
        ----------
        covariates : covariate name -> value (scalar or array broadcastable against the etas' leading axes).
        eta : array (..., n_eta); default zeros (the typical patient).
        kappa : array (..., n_kappa); default zeros.

        Returns
        -------
        dict name -> array with the broadcast leading shape. Raises :class:`ParameterValueError` when a
        volume or rate is not finite or not positive.
        """
        values: dict[str, Any] = {name: np.float64(value) for name, value in self.thetas.items()}
        for name in self.covariates:
            if name in self.block.used_inputs and name not in covariates:
                raise ModelError(f"covariates.{name}", "missing value for a covariate the model uses")
            values[name] = np.asarray(covariates.get(name, math.nan), dtype=float)
        eta_array = np.zeros(self.n_eta) if eta is None else np.asarray(eta, dtype=float)
        for i, name in enumerate(self.eta_names):
            values[name] = eta_array[..., i]
        kappa_array = np.zeros(self.n_kappa) if kappa is None else np.asarray(kappa, dtype=float)
        for i, name in enumerate(self.kappa_names):
            values[name] = kappa_array[..., i]
        result = self.block(values)
        self._check_values(result)
        return result

    def _label(self, name: str) -> str:
        """The field a block output comes from, for error messages (``outputs.conc.volume``)."""
        return self.field_paths.get(name, name)

    def _check_values(self, result: Mapping[str, np.ndarray]) -> None:
        # Fast path (the inner loop of estimation): three reductions over all values at once; only when one
        # fails is each value examined to name the culprit.
        arrays = [np.ravel(value) for value in result.values()]
        everything = np.concatenate(arrays) if arrays else np.zeros(0)
        volumes = [np.ravel(result[name]) for name in self.volume_names if name in result]
        non_negative = [np.ravel(v) for name, v in result.items() if name.startswith(_NON_NEGATIVE_PREFIXES)]
        if (
            np.isfinite(everything).all()
            and (not volumes or np.concatenate(volumes).min() > 0)
            and (not non_negative or np.concatenate(non_negative).min() >= 0)
        ):
            return
        _label = self._label
        for name, value in result.items():
            array = np.asarray(value)
            if array.dtype == bool:
                continue
            low = array.min(initial=np.inf)
            if not np.isfinite(low) or not np.isfinite(array.max(initial=-np.inf)):
                if array.size and not np.all(np.isfinite(array)):
                    raise ParameterValueError(
                        f"{_label(name)} is not finite for some parameter values", path=_label(name)
                    )
            if name in self.volume_names and low <= 0:
                raise ParameterValueError(
                    f"{_label(name)} must be positive (a volume), got {low:g}", path=_label(name)
                )
            if low < 0 and name.startswith(_NON_NEGATIVE_PREFIXES):
                raise ParameterValueError(
                    f"{_label(name)} must not be negative, got {low:g}", path=_label(name)
                )

    def covariate_warnings(self, covariates: Mapping[str, Any]) -> list[str]:
        """Warnings for covariate values outside the model's declared ranges."""
        warnings: list[str] = []
        for name, spec in self.covariates.items():
            if name not in covariates:
                continue
            value = float(covariates[name])
            if spec.min is not None and spec.max is not None and not spec.min <= value <= spec.max:
                warnings.append(
                    f"{name} {value:g} lies outside the model's range [{spec.min:g}, {spec.max:g}]"
                    + (f" {spec.unit}" if spec.unit else "")
                )
            elif spec.type == "boolean" and value not in (0.0, 1.0):
                warnings.append(f"{name} {value:g} is not 0 or 1")
        return warnings


# Derived quantities that cannot be negative: flow rates, VMAX, KM, bioavailability, lag, duration.
_NON_NEGATIVE_PREFIXES = ("__rate", "__vmax", "__km", "__f_", "__lag", "__dur")


def _is_valid_name(name: str) -> bool:
    """Identifiers that are not Python keywords and not reserved (a leading underscore is the engine's)."""
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")


def load_model(path: str | Path) -> PopulationModel:
    """Read and validate a model file: a bare mipd-model/1 document, or a library entry (mipd-library/1,
    models_catalog/library/models/) whose ``model`` is one, so the shipped files work on the command line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError("model", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError("model", f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(document, dict) and "library_format" in document:
        document = document.get("model")
    return parse_model(document)


def parse_model(document: Any) -> PopulationModel:
    """Validate a model document (already parsed JSON) and compile it."""
    return _Parser(document).parse()


class _Parser:
    def __init__(self, document: Any) -> None:
        if not isinstance(document, Mapping):
            raise ModelError("", "a model file must be a JSON object")
        self.doc = document

    # -- small helpers ------------------------------------------------------------------------------------
    def _get(
        self, key: str, kind: type | tuple[type, ...], *, required: bool = True, default: Any = None
    ) -> Any:
        if key not in self.doc or self.doc[key] is None:
            if required:
                raise ModelError(key, "required field is missing")
            return default
        value = self.doc[key]
        if not isinstance(value, kind):
            raise ModelError(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    # -- the parse ----------------------------------------------------------------------------------------
    def parse(self) -> PopulationModel:
        fmt = self._get("format", str)
        if fmt != FORMAT:
            raise ModelError("format", f"unsupported format '{fmt}' (expected '{FORMAT}')")
        model_id = self._get("id", str)
        thetas = self._thetas()
        covariates = self._covariates()
        eta_names, omega = self._omega("omega", self._get("omega", Mapping), "etas")
        iov_doc = self._get("iov", Mapping, required=False)
        kappa_names, iov_omega = (), None
        if iov_doc is not None:
            kappa_names, iov_omega = self._omega("iov", iov_doc, "kappas")
        inputs_names = [*thetas, *covariates, *eta_names, *kappa_names]
        _check_unique(inputs_names)
        parameters = self._get("parameters", Mapping)
        if not parameters:
            raise ModelError("parameters", "a model needs at least one parameter")
        for name in parameters:
            if not _is_valid_name(str(name)):
                raise ModelError(f"parameters.{name}", f"'{name}' is not a valid name")
            if name in inputs_names:
                raise ModelError(f"parameters.{name}", f"'{name}' is already a theta, covariate or eta name")

        compartments, flows, saturable, preset_volumes, absorption = self._structure(parameters)
        expressions: dict[str, Any] = dict(parameters)
        paths = {name: f"parameters.{name}" for name in parameters}
        volume_names: set[str] = set()
        linear_flows = []
        for i, (source, target, rate, path) in enumerate(flows):
            target_name = compartments[target] if target is not None else "out"
            key = f"__rate_{i}_{compartments[source]}_to_{target_name}"
            expressions[key], paths[key] = rate, path
            linear_flows.append(LinearFlow(source, target, key))
        saturable_flows = []
        for i, (source, target, vmax, km, volume, path) in enumerate(saturable):
            keys = (f"__vmax_{i}", f"__km_{i}", f"__vol_sat_{i}")
            for key, text, sub in zip(keys, (vmax, km, volume), ("vmax", "km", "volume"), strict=True):
                expressions[key], paths[key] = text, f"{path}.{sub}"
            volume_names.add(keys[2])
            saturable_flows.append(SaturableFlow(source, target, *keys))
        inputs = self._inputs(compartments, expressions, paths)
        routes = self._routes(compartments, absorption)
        outputs = self._outputs(compartments, expressions, paths, volume_names)
        for name in preset_volumes:
            volume_names.add(name)
        pd = self._pd(expressions, paths)

        block = compile_block(expressions, inputs=inputs_names, paths=paths)
        population = self._get("population", Mapping, required=False, default={})
        domain_doc = self._get("domain", Mapping, required=False)
        domain = None if domain_doc is None else parse_domain(domain_doc, covariates=covariates)
        citation = self._get("citation", Mapping, required=False, default={})
        model = PopulationModel(
            id=model_id,
            drug=self._get("drug", str, required=False, default=""),
            title=self._get("title", str, required=False, default=""),
            citation=dict(citation),
            document=dict(self.doc),
            thetas=thetas,
            covariates=covariates,
            eta_names=eta_names,
            omega=omega,
            kappa_names=kappa_names,
            iov_omega=iov_omega,
            compartments=compartments,
            linear_flows=tuple(linear_flows),
            saturable_flows=tuple(saturable_flows),
            inputs=inputs,
            routes=routes,
            outputs=outputs,
            parameter_names=tuple(parameters),
            volume_names=frozenset(volume_names),
            block=block,
            field_paths=dict(paths),
            pd=pd,
            population=dict(population),
            domain=domain,
        )
        self._sanity_check(model)
        return model

    def _thetas(self) -> dict[str, float]:
        thetas = self._get("thetas", Mapping, required=False, default={})
        result = {}
        for name, value in thetas.items():
            path = f"thetas.{name}"
            if not _is_valid_name(str(name)):
                raise ModelError(path, f"'{name}' is not a valid name")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ModelError(path, f"expected a finite number, got {value!r}")
            result[name] = float(value)
        return result

    def _covariates(self) -> dict[str, CovariateSpec]:
        covariates = self._get("covariates", Mapping, required=False, default={})
        result = {}
        for name, spec in covariates.items():
            path = f"covariates.{name}"
            if not _is_valid_name(str(name)):
                raise ModelError(path, f"'{name}' is not a valid name")
            if not isinstance(spec, Mapping):
                raise ModelError(path, "expected an object with unit, min and max")
            kind = spec.get("type", "continuous")
            if kind not in ("continuous", "boolean", "categorical"):
                raise ModelError(f"{path}.type", f"unknown covariate type '{kind}'")
            bounds = {}
            for key in ("min", "max", "reference"):
                value = spec.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                    raise ModelError(f"{path}.{key}", f"expected a number, got {value!r}")
                bounds[key] = None if value is None else float(value)
            if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
                raise ModelError(path, f"range is inverted: min {bounds['min']:g} > max {bounds['max']:g}")
            variation = spec.get("variation", "carried_forward")
            if variation not in VARIATIONS:
                raise ModelError(
                    f"{path}.variation", f"unknown variation {variation!r} (one of {', '.join(VARIATIONS)})"
                )
            result[name] = CovariateSpec(
                name=name,
                unit=str(spec.get("unit", "")),
                type=kind,
                min=bounds["min"],
                max=bounds["max"],
                reference=bounds["reference"],
                description=str(spec.get("description", "")),
                variation=variation,
            )
        return result

    def _omega(self, path: str, doc: Mapping[str, Any], names_key: str) -> tuple[tuple[str, ...], np.ndarray]:
        names = doc.get(names_key)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelError(f"{path}.{names_key}", "expected a list of names")
        for name in names:
            if not _is_valid_name(name):
                raise ModelError(f"{path}.{names_key}", f"'{name}' is not a valid name")
        if not names:
            return (), np.zeros((0, 0))
        kind = doc.get("type", "variance")
        matrix_doc = doc.get("matrix")
        n = len(names)
        if kind == "cv_percent":
            values = matrix_doc
            if isinstance(values, list) and values and isinstance(values[0], list):
                values = [values[i][i] for i in range(len(values))]
            if not isinstance(values, list) or len(values) != n:
                raise ModelError(f"{path}.matrix", f"expected {n} CV values")
            cv = np.array(values, dtype=float) / 100.0
            if np.any(cv <= 0):
                raise ModelError(f"{path}.matrix", "CVs must be positive")
            matrix = np.diag(np.log1p(cv**2))
        elif kind == "variance":
            try:
                matrix = np.array(matrix_doc, dtype=float)
            except (TypeError, ValueError):
                raise ModelError(f"{path}.matrix", "expected a square matrix of numbers") from None
            if matrix.shape != (n, n):
                raise ModelError(f"{path}.matrix", f"expected a {n}x{n} matrix for {n} {names_key}")
        else:
            raise ModelError(f"{path}.type", f"unknown type '{kind}' (variance or cv_percent)")
        if not np.all(np.isfinite(matrix)):
            raise ModelError(f"{path}.matrix", "contains non-finite values")
        if not np.allclose(matrix, matrix.T, rtol=0, atol=1e-12):
            raise ModelError(f"{path}.matrix", "is not symmetric")
        try:
            np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            raise ModelError(f"{path}.matrix", "is not positive definite") from None
        return tuple(names), matrix

    def _structure(self, parameters: Mapping[str, Any]):
        structure = self._get("structure", Mapping)
        absorption = structure.get("absorption")
        if absorption not in (None, "first-order"):
            raise ModelError("structure.absorption", f"unknown absorption '{absorption}'")
        preset = structure.get("preset")
        saturable: list[tuple[int, int | None, Any, Any, Any, str]] = []
        flows: list[tuple[int, int | None, Any, str]] = []
        if preset is not None:
            if preset not in _PRESETS:
                raise ModelError("structure.preset", f"unknown preset '{preset}' (1cmt, 2cmt, 3cmt)")
            names, preset_flows, volumes = _PRESETS[preset]
            required = list(_PRESET_PARAMETERS[preset])
            compartments = (("depot",) if absorption else ()) + names
            if absorption:
                required.append("KA")
                flows.append((0, 1, "KA", "structure"))
            for source, target, rate in preset_flows:
                flows.append(
                    (
                        compartments.index(source),
                        None if target is None else compartments.index(target),
                        rate,
                        "structure",
                    )
                )
            for name in required:
                if name not in parameters:
                    raise ModelError("parameters", f"preset '{preset}' needs parameter '{name}'")
            return compartments, flows, saturable, set(volumes.values()), bool(absorption)
        compartments = structure.get("compartments")
        if not isinstance(compartments, list) or not compartments:
            raise ModelError("structure", "give a preset or a list of compartments")
        if len(set(compartments)) != len(compartments) or not all(isinstance(c, str) for c in compartments):
            raise ModelError("structure.compartments", "names must be unique strings")
        compartments = tuple(compartments)

        def index(name: Any, path: str) -> int | None:
            if name is None:
                return None
            if name not in compartments:
                raise ModelError(path, f"unknown compartment '{name}'")
            return compartments.index(name)

        for i, flow in enumerate(structure.get("flows") or []):
            path = f"structure.flows[{i}]"
            if not isinstance(flow, Mapping) or "rate" not in flow or "from" not in flow:
                raise ModelError(path, "a flow needs 'from', 'to' and 'rate'")
            source = index(flow["from"], f"{path}.from")
            if source is None:
                raise ModelError(f"{path}.from", "a flow needs a source compartment")
            target = index(flow.get("to"), f"{path}.to")
            if target == source:
                raise ModelError(path, "a flow cannot go from a compartment to itself")
            flows.append((source, target, flow["rate"], f"{path}.rate"))
        for i, flow in enumerate(structure.get("saturable") or []):
            path = f"structure.saturable[{i}]"
            if not isinstance(flow, Mapping) or not {"from", "vmax", "km", "volume"} <= set(flow):
                raise ModelError(path, "a saturable flow needs 'from', 'to', 'vmax', 'km' and 'volume'")
            source = index(flow["from"], f"{path}.from")
            if source is None:
                raise ModelError(f"{path}.from", "a flow needs a source compartment")
            target = index(flow.get("to"), f"{path}.to")
            saturable.append((source, target, flow["vmax"], flow["km"], flow["volume"], path))
        if not flows and not saturable:
            raise ModelError("structure", "a compartment graph needs at least one flow")
        return compartments, flows, saturable, set(), False

    def _inputs(self, compartments, expressions, paths) -> dict[int, InputSpec]:
        doc = self._get("inputs", Mapping, required=False, default={})
        result: dict[int, InputSpec] = {}
        for name, spec in doc.items():
            path = f"inputs.{name}"
            if name not in compartments:
                raise ModelError(path, f"unknown compartment '{name}'")
            if not isinstance(spec, Mapping):
                raise ModelError(path, "expected an object")
            unknown = set(spec) - {"bioavailability", "lag_h", "duration_h"}
            if unknown:
                raise ModelError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
            index = compartments.index(name)
            keys = {}
            for field_name, prefix in (
                ("bioavailability", "__f"),
                ("lag_h", "__lag"),
                ("duration_h", "__dur"),
            ):
                if spec.get(field_name) is None:
                    keys[field_name] = None
                    continue
                key = f"{prefix}_{name}"
                expressions[key], paths[key] = spec[field_name], f"{path}.{field_name}"
                keys[field_name] = key
            result[index] = InputSpec(keys["bioavailability"], keys["lag_h"], keys["duration_h"])
        return result

    def _routes(self, compartments, absorption: bool) -> dict[str, tuple[int, ...]]:
        routes: dict[str, tuple[int, ...]] = {}
        if "central" in compartments:
            central = compartments.index("central")
            routes.update(iv_bolus=(central,), iv_infusion=(central,))
            if absorption:
                routes["oral"] = (compartments.index("depot"),)
        doc = self._get("routes", Mapping, required=False, default={})
        for route, targets in doc.items():
            path = f"routes.{route}"
            if not isinstance(targets, list) or not targets:
                raise ModelError(path, "expected a non-empty list of compartments")
            indexes = []
            for target in targets:
                if target not in compartments:
                    raise ModelError(path, f"unknown compartment '{target}'")
                indexes.append(compartments.index(target))
            routes[route] = tuple(indexes)
        return routes

    def _outputs(self, compartments, expressions, paths, volume_names) -> dict[str, OutputSpec]:
        doc = self._get("outputs", Mapping)
        if not doc:
            raise ModelError("outputs", "a model needs at least one output")
        result = {}
        for name, spec in doc.items():
            path = f"outputs.{name}"
            if not isinstance(spec, Mapping):
                raise ModelError(path, "expected an object")
            compartment = spec.get("compartment")
            if compartment not in compartments:
                raise ModelError(f"{path}.compartment", f"unknown compartment '{compartment}'")
            if "volume" not in spec:
                raise ModelError(f"{path}.volume", "required field is missing")
            volume_key = f"__vol_out_{name}"
            expressions[volume_key], paths[volume_key] = spec["volume"], f"{path}.volume"
            volume_names.add(volume_key)
            scale = spec.get("scale", 1)
            if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
                raise ModelError(f"{path}.scale", f"expected a positive number, got {scale!r}")
            result[name] = OutputSpec(
                name=name,
                compartment=compartments.index(compartment),
                volume=volume_key,
                scale=float(scale),
                unit=str(spec.get("unit", "")),
                error=self._error(f"{path}.error", spec.get("error")),
            )
        return result

    @staticmethod
    def _error(path: str, doc: Any) -> ErrorModel:
        return parse_error_model(path, doc)

    def _pd(self, expressions, paths) -> PDModel | None:
        doc = self._get("pd", Mapping, required=False)
        if doc is None:
            return None
        kind = doc.get("model")
        if kind not in ("emax", "sigmoid_emax"):
            raise ModelError("pd.model", f"unknown PD model '{kind}' (emax, sigmoid_emax)")
        keys = {}
        for name in ("E0", "EMAX", "EC50", "HILL"):
            if doc.get(name) is None:
                if name in ("EMAX", "EC50"):
                    raise ModelError(f"pd.{name}", "required field is missing")
                continue
            key = f"__pd_{name}"
            expressions[key], paths[key] = doc[name], f"pd.{name}"
            keys[name] = key
        return PDModel(kind, keys)

    @staticmethod
    def _sanity_check(model: PopulationModel) -> None:
        """Evaluate the typical patient at typical covariates, when the model declares them."""
        covariates = {}
        for name, spec in model.covariates.items():
            value = spec.typical_value()
            if value is None and name in model.block.used_inputs:
                return  # cannot evaluate without a value; run-time checks still apply
            covariates[name] = value if value is not None else math.nan
        try:
            model.evaluate(covariates)
        except ParameterValueError as exc:
            raise ModelError(exc.path or "parameters", f"typical patient: {exc}") from None


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ModelError(
                name, f"'{name}' is defined twice (thetas, covariates, etas and kappas share names)"
            )
        seen.add(name)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {Mapping: "an object", str: "a string", list: "a list", int: "a number", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
