"""The loaded, immutable mapping objects and their lookups (rules-language §2–4, §9, §11).

``ReferenceMapping`` (.rmap) selects a reference for a header; ``InstrumentContext`` (.imap)
runs its rmaps per filekind; ``PipelineContext`` (.pmap) picks the instrument.  The
``get_best_ref``/``get_best_references`` methods return exactly what CRDS returns
("NOT FOUND ..." strings included); ``select``/``select_references`` give the same answers
with failures as typed errors.
"""
from __future__ import annotations

import copyreg
import dataclasses
import functools
import logging
import operator
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from crdsmini.conditioning import condition_value
from crdsmini.errors import (CrdsminiError, MappingError, MissingKeyError, OtherError, UnknownInstrumentError,
                             UnknownReftypeError)
from crdsmini.expressions import Expression, compile_expression
from crdsmini.expressions import _build as _build_evaluator  # to re-compile an unpickled tree
from crdsmini.matchers import COMPLEX, ElementMatcher, compile_element
from crdsmini.literals import plain_value
from crdsmini.observatories import get_plugin
from crdsmini.selectors import BuildContext, Selector, build_selector
from crdsmini.syntax import MappingSource

__all__ = [
    "Mapping_",
    "ReferenceMapping",
    "InstrumentContext",
    "PipelineContext",
    "NA_VALUES",
    "OMIT_VALUES",
    "NOT_FOUND_NA",
]

log = logging.getLogger("crdsmini")

NA_VALUES = frozenset({"N/A", "TEMP_N/A", "n/a", "temp_n/a"})
OMIT_VALUES = frozenset({"OMIT", "TEMP_OMIT", "omit"})
NOT_FOUND_NA = "NOT FOUND n/a"
_TERMINAL_OUTCOMES: dict[str, Any] = {}  # N/A and OMIT spellings -> their outcome (filled below)
_DEFAULT_SUBSTITUTIONS = {"SUBARRAY": {"GENERIC": "N/A"}, "META.SUBARRAY.NAME": {"GENERIC": "N/A"}}
_INSTRUMENT_KEYS = ("INSTRUME", "META.INSTRUMENT.NAME", "META_INSTRUMENT_NAME", "INSTRUMENT",
                    "ROMAN.META.INSTRUMENT.NAME", "META.INSTRUMENT.TYPE", "META_INSTRUMENT_TYPE")
_INSTRUMENT_ALIASES = {"wfii": "wfpc2"}


class _Outcome:
    """Sentinels for the two non-file answers of an rmap."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return (_outcome, (self.name,))


def _outcome(name: str) -> "_Outcome":
    return NA if name == "NA" else OMITTED


NA = _Outcome("NA")

# The value of an absent key in the memo keys of relevance verdicts: unlike None, it never
# equals a header value, so a key present with None and an absent key are told apart.
class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self) -> str:
        return "_MISSING"  # pickled by reference: the one instance


_MISSING = _Missing()


def _getter(names: tuple[str, ...] | None) -> Callable[[Mapping[str, Any]], tuple] | None:
    """``operator.itemgetter`` of two names or more (a tuple in one C call), else None."""
    return operator.itemgetter(*names) if names is not None and len(names) >= 2 else None


def _values(header: Mapping[str, Any], names: tuple[str, ...], absent: tuple, getter: Any) -> tuple:
    """The values of ``names`` in ``header``, ``_MISSING`` for an absent one (memo keys).

    A plain dict with every name goes through ``getter`` (3-4x faster than map(get));
    ``dict`` subclasses may define ``__missing__``, so they take ``get`` like any mapping.
    """
    if len(names) == 1:
        return (header.get(names[0], absent[0]),)
    if getter is not None and type(header) is dict:
        try:
            return getter(header)
        except KeyError:
            pass
    return tuple(map(header.get, names, absent))


def _rememberable(values: tuple) -> bool:
    """A memo key of header values: only strings (1 == 1.0 == True) and absent keys."""
    return all(type(value) is str or value is _MISSING for value in values)
OMITTED = _Outcome("OMITTED")
_TERMINAL_OUTCOMES.update(dict.fromkeys(NA_VALUES, NA))
_TERMINAL_OUTCOMES.update(dict.fromkeys(OMIT_VALUES, OMITTED))


def _folded(value: Any) -> Any:
    """Header strings read lower-cased unless parenthesised (rules-language §1.6)."""
    if isinstance(value, str) and not (value.startswith("(") and value.endswith(")")):
        return value.lower()
    return value


class _Failure:
    """A selector failure not yet passed through CRDS's recovery rules (dnr, fallback, ...)."""

    __slots__ = ("error", "header")

    def __init__(self, error: CrdsminiError, header: Mapping[str, Any]) -> None:
        self.error = error
        self.header = header


def _dotted_spellings(name: str, limit: int = 8) -> list[str] | None:
    """Header keys whose ``_`` alias is ``name`` (``A_B`` <- ``A.B``); None when too many."""
    positions = [i for i, c in enumerate(name) if c == "_"]
    if len(positions) > limit:
        return None
    spellings = []
    for mask in range(1, 1 << len(positions)):
        chars = list(name)
        for bit, position in enumerate(positions):
            if mask >> bit & 1:
                chars[position] = "."
        spellings.append("".join(chars))
    return spellings


def _namespace(header: Mapping[str, Any]) -> dict[str, Any]:
    """The expression namespace: the header plus ``_`` aliases of dotted keys."""
    space = dict(header)
    for key, value in header.items():
        if "." in key:
            space[key.replace(".", "_")] = value
    return space


class Mapping_:
    """What every mapping kind shares: its source, header and identity."""

    kind = "mapping"
    _required_header = ("mapping", "name", "parkey", "derived_from", "observatory")

    @property
    def path(self) -> Path | None:
        """The file this mapping was loaded from, symlinks resolved (None: built from text).

        An rmap loaded on its own is given its absolute path as text and resolves it
        here, on first use: resolving costs a sixth of a parse-cached load, and a lone rmap
        names no other file, so nothing in the load itself needs it.
        """
        path = self._path
        if isinstance(path, str):
            path = self._path = Path(os.path.realpath(path))
        return path

    @path.setter
    def path(self, value: Path | str | None) -> None:
        self._path = value

    def __init__(self, source: MappingSource, path: Path | None) -> None:
        self.source = source
        self.path = path
        self.name = os.path.basename(path) if path is not None else source.name
        self.header: dict[str, Any] = {key: plain_value(value) for key, value in source.header.resolved().items()}
        if "parkey" not in self.header:
            raise MappingError(f"Can't load file {self.name} : 'parkey'", file=self.name, keyword="parkey")
        for key in self._required_header:
            if key not in self.header:
                raise MappingError(f"Can't load file {self.name} : Required header key '{key}' is missing.",
                                   file=self.name, keyword=key)
        self.parkey = self.header["parkey"]
        self.observatory = str(_folded(self.header["observatory"]))

    def header_value(self, key: str, default: Any = None) -> Any:
        """A header value as CRDS reads it (strings lower-cased unless parenthesised)."""
        return _folded(self.header.get(key, default))

    @property
    def derived_from(self) -> str:
        return str(self.header.get("derived_from", ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# Pickling.  A loaded mapping pickles as its built state (so a worker process or the parse
# cache gets it without re-parsing or re-compiling the rules); the only closures in it are
# the compiled Match-key matchers and expression evaluators, which pickle as the text or
# tree they were compiled from and are compiled again when unpickled.

class _DeferredMatch:
    """A complex element's match function, compiled on its first call.

    Used for matchers restored from a pickle: the element compiled when the rmap was first
    loaded (errors were reported then), and regex compilation is most of a cached load.
    """

    __slots__ = ("text", "function")

    def __init__(self, text: str) -> None:
        self.text = text
        self.function: Any = None

    def __call__(self, value: str) -> int:
        function = self.function
        if function is None:  # a race only compiles the same function twice
            function = self.function = compile_element(self.text).match
        return function(value)

    def __reduce__(self) -> tuple:
        return (_DeferredMatch, (self.text,))


@functools.lru_cache(maxsize=8192)
def _element_matcher(kind: str, text: str) -> ElementMatcher:
    # Matchers are immutable and the same few texts ('*', 'N/A', 'HRC') recur in every rmap.
    if kind == COMPLEX:
        return ElementMatcher(kind, text, _DeferredMatch(text))
    return compile_element(text)


def _reduce_element_matcher(matcher: ElementMatcher) -> tuple:
    return (_element_matcher, (matcher.kind, matcher.text))


def _expression(text: str, names: frozenset[str], tree: Any, source: str | None) -> Expression:
    return Expression(text=text, names=names, tree=tree, source=source, _evaluator=_build_evaluator(tree, source))


def _reduce_expression(expression: Expression) -> tuple:
    return (_expression, (expression.text, expression.names, expression.tree, expression.source))


copyreg.pickle(ElementMatcher, _reduce_element_matcher)
copyreg.pickle(Expression, _reduce_expression)


class ReferenceMapping(Mapping_):
    """An .rmap: the rules that pick one reference file for a header."""

    kind = "rmap"
    _required_header = Mapping_._required_header + ("instrument", "filekind")

    def __init__(self, source: MappingSource, path: Path | None = None) -> None:
        super().__init__(source, path)
        name = self.name
        self.instrument = str(self.header_value("instrument"))
        self.filekind = str(self.header_value("filekind"))
        self.plugin = get_plugin(self.observatory)
        if not isinstance(self.parkey, (tuple, list)):
            raise MappingError(f"Can't load file {name} : parameters should be a list or tuple of header keys",
                               file=name, keyword="parkey")
        switch = str(self.header_value("reffile_switch", "none")).upper()
        self.reffile_switch = switch
        required: list[str] = []
        for level in self.parkey:
            if not isinstance(level, (tuple, list)):
                raise MappingError(f"Can't load file {name} : parameters should be a list or tuple of header keys",
                                   file=name, keyword="parkey")
            required.extend(level)
        if switch != "NONE":
            required.append(switch)
        extra = self.header.get("extra_keys", ()) or ()
        if not isinstance(extra, (tuple, list)):
            raise MappingError(f"Can't load file {name} : extra_keys should be a list or tuple of header keys",
                               file=name, keyword="extra_keys")
        required.extend(extra)
        for key in required:
            if not isinstance(key, str):
                raise MappingError(f"Can't load file {name} : parameter {key!r} is not a header keyword name",
                                   file=name, keyword="parkey")
        required.extend(self.plugin.extra_keys)
        self.required_parkeys: tuple[str, ...] = tuple(required)
        self._failure_is_na = str(self.header_value("reffile_required", "none")) not in ("yes", "none")
        dotted = [key for key in self.required_parkeys if "." in key]
        self._omit = self._expression("rmap_omit", dotted, relevance=False)
        self._relevance = self._expression("rmap_relevance", dotted, relevance=True)
        self._parkey_relevance = self._parkey_expressions(dotted)
        substitutions = dict(_DEFAULT_SUBSTITUTIONS)
        substitutions.update(self.header.get("substitutions", {}) or {})
        self.substitutions = substitutions
        merge = self.header.get("merge_overlaps")
        self.merge_overlaps = merge is None or str(merge).upper() in ("TRUE", "1")
        self._precondition = self._hook("precondition_header")
        self._fallback = self._hook("fallback_header")
        context = BuildContext(name=name, parkey=tuple(tuple(level) for level in self.parkey),
                               substitutions=substitutions, merge_overlaps=self.merge_overlaps)
        self.selector: Selector = build_selector(source.selector, context, 0)
        self.needs_namespace = self._omit is not None or self._relevance is not None
        # rmap_relevance alone, naming plain header keys (no '_': never a dotted key's alias):
        # its verdict is a function of those keys' values, remembered for all-string values.
        self._relevance_names: tuple[str, ...] | None = None
        if self._relevance is not None and self._omit is None:
            names = tuple(sorted(self._relevance.names))
            if not any("_" in name for name in names):
                self._relevance_names = names
        self._relevance_memo: dict[tuple, bool] = {}
        self._relevance_absent = (_MISSING,) * len(self._relevance_names or ())
        self._relevance_getter = _getter(self._relevance_names)
        self._forced_names = self._plain_parkey_relevance_names()
        self._forced_absent = (_MISSING,) * len(self._forced_names or ())
        self._forced_getter = _getter(self._forced_names)
        self._forced_memo: dict[tuple, tuple[str, ...]] = {}
        self._screened = (self.needs_namespace or self._precondition is not None
                          or bool(self._parkey_relevance))
        self.dependency_keys = self._dependency_keys()

    def _plain_parkey_relevance_names(self) -> tuple[str, ...] | None:
        """The header keys parkey_relevance reads, when they are all plain (no ``_``).

        A name without ``_`` is never a dotted key's alias, so the expressions' verdicts are
        a function of those keys' values alone and can be remembered per value tuple (as
        ``_relevance_memo`` does for rmap_relevance).  None: not rememberable.
        """
        if not self._parkey_relevance:
            return None
        names = set()
        for _, expression in self._parkey_relevance:
            names.update(expression.names)
        names.discard("keep_comments")  # always False in the namespace
        if any("_" in name for name in names):
            return None
        return tuple(sorted(names))

    def _dependency_keys(self) -> tuple[str, ...] | None:
        """Every header key the rules read before a failure's recovery, or None if unknown.

        Two headers that agree on these keys (values and presence) get the same answer from
        ``apply_rules``; that is what lets the bulk path evaluate each distinct tuple once.
        Observatory hooks may read any key, so an rmap with one answers None.
        """
        if self._precondition is not None or self._fallback is not None:
            return None
        keys = dict.fromkeys(self.required_parkeys)
        named = self.expression_keys
        if named is None:
            return None
        keys.update(dict.fromkeys(sorted(named)))
        return tuple(keys)

    @property
    def expression_keys(self) -> frozenset[str] | None:
        """Header keys the omit/relevance/parkey_relevance expressions can read (a name
        ``A_B`` is also read from a key ``A.B``); None when a name has too many spellings."""
        expressions = [e for e in (self._omit, self._relevance) if e is not None]
        expressions += [expression for _, expression in self._parkey_relevance]
        keys: set[str] = set()
        for expression in expressions:
            for name in expression.names:
                if name == "keep_comments":
                    continue
                spellings = _dotted_spellings(name)
                if spellings is None:
                    return None
                keys.update([name] + spellings)
        return frozenset(keys)

    def __getstate__(self) -> dict[str, Any]:
        # The compiled selector is the rules; the literal it was built from is most of the
        # pickle and of its load time, so a pickled rmap (process pools, the parse cache)
        # keeps ``source`` without it: ``source.selector`` is None there (parse
        # ``source.text`` again if the literal is ever needed).
        state = dict(self.__dict__)
        if self.source.selector is not None:
            state["source"] = dataclasses.replace(self.source, selector=None)
        state["_relevance_memo"] = {}
        state["_forced_memo"] = {}
        return state

    # -- load-time helpers -------------------------------------------------------------

    def _expression(self, key: str, dotted: list[str], relevance: bool) -> Expression | None:
        if key not in self.header:
            return None
        value = self.header_value(key)
        if not isinstance(value, str):
            raise MappingError(f"Can't load file {self.name} : {key}: compile() arg 1 must be a string, "
                               "bytes or AST object", file=self.name, keyword=key)
        if relevance:
            value = value.replace("always", "True")
        if value.strip() == "True":
            return None if relevance else compile_expression(value, source=self.name)
        return compile_expression(value, dotted_names=dotted, source=self.name)

    def _parkey_expressions(self, dotted: list[str]) -> tuple[tuple[str, Expression], ...]:
        texts: dict[str, Any] = {}
        for name, text in (self.header.get("parkey_relevance") or {}).items():
            texts[str(name).lower()] = text
        for name in self.header.get("comment_parkeys", ()) or ():
            texts[str(name).lower()] = "keep_comments"
        result = []
        seen = set()
        for parkey in self.required_parkeys:
            lower = parkey.lower()
            if lower in texts and parkey not in seen:
                seen.add(parkey)
                text = texts[lower]
                if not isinstance(text, str):
                    raise MappingError(f"Can't load file {self.name} : parkey_relevance for {parkey!r} must be "
                                       "a string", file=self.name, keyword=parkey)
                result.append((parkey, compile_expression(text, dotted_names=dotted, source=self.name)))
        return tuple(result)

    def _hook(self, generic: str):
        hooks = self.header.get("hooks")
        if isinstance(hooks, dict):
            name = str(hooks.get(generic, generic))
            if name.lower() == "none":
                return None
        else:
            name = f"{generic}_{self.instrument}_{self.filekind}_v1"
        return self.plugin.hook(name)

    # -- lookup ------------------------------------------------------------------------

    @property
    def plugin_hooks(self) -> dict[str, str]:
        """Which observatory hooks apply to this rmap (by generic name)."""
        found = {}
        for generic, function in (("precondition_header", self._precondition), ("fallback_header", self._fallback)):
            if function is not None:
                found[generic] = function.__name__
        return found

    def map_irrelevant_parkeys_to_na(self, header: Mapping[str, Any]) -> Mapping[str, Any]:
        """Force parameters whose parkey_relevance is false (and comment parkeys) to N/A."""
        if not self._parkey_relevance:
            return header
        names = self._forced_names
        if names is None:
            forced = self._forced_parkeys(header)
        else:
            values = _values(header, names, self._forced_absent, self._forced_getter)
            forced = self._forced_memo.get(values)  # only _rememberable tuples are stored
            if forced is None:
                forced = self._forced_parkeys(header)
                if len(self._forced_memo) < 4096 and _rememberable(values):
                    self._forced_memo[values] = forced
        if not forced:
            return header
        result = dict(header)
        for parkey in forced:
            result[parkey] = "N/A"
        return result

    def _forced_parkeys(self, header: Mapping[str, Any]) -> tuple[str, ...]:
        """The parkeys whose parkey_relevance is false for ``header`` (raises what the
        expressions raise, e.g. an unknown name)."""
        space = dict(header)
        for parkey in self.required_parkeys:
            if space.get(parkey) in (None, "UNDEFINED"):
                space[parkey] = "UNDEFINED"
        space = _namespace(space)
        space["keep_comments"] = False
        return tuple(parkey for parkey, expression in self._parkey_relevance if not expression.evaluate(space))

    def preprocess(self, header: Mapping[str, Any]) -> Mapping[str, Any]:
        """The header the selector sees: observatory precondition hook, then parkey relevance.

        Raises what those raise (a missing key in a hook, an unknown name in an expression).
        """
        if self._precondition is not None:
            try:
                header = self._precondition(self, header)
            except CrdsminiError:
                raise
            except Exception as exc:  # noqa: BLE001 - CRDS reports any hook failure as NOT FOUND <text>
                raise OtherError(str(exc)) from exc
        return self.map_irrelevant_parkeys_to_na(header)

    def apply_rules(self, header: Mapping[str, Any], space: dict[str, Any] | None = None) -> Any:
        """Omit, relevance, preprocessing and the selector (rules-language §4 steps 1-5).

        Returns the outcome (a choice, ``NA`` or ``OMITTED``) or, when the selector fails, a
        ``_Failure`` for ``recover``; errors before the selector (hooks, expressions) raise.
        ``space`` is the header's expression namespace when the caller already built it.
        """
        if self._screened:  # most rmaps have no omit/relevance/hooks: one test skips them
            names = self._relevance_names
            if names is not None:
                if len(names) == 1:  # the usual case ('DETECTOR',), inlined: most rmaps pass here
                    values = (header.get(names[0], _MISSING),)
                else:
                    values = _values(header, names, self._relevance_absent, self._relevance_getter)
                relevant = self._relevance_memo.get(values)  # only _rememberable tuples are stored
                if relevant is None:
                    relevant = self._relevant(header, space, values)
                if not relevant:
                    return NA
            elif self.needs_namespace:
                if space is None:
                    space = _namespace(header)
                if self._omit is not None:
                    try:
                        if self._omit.evaluate(space):
                            return OMITTED
                    except CrdsminiError as exc:
                        log.warning("Failed checking OMIT for %r %r with expr %r : %s",
                                    self.instrument, self.filekind, self._omit.text, exc)
                if self._relevance is not None:
                    try:
                        if not self._relevance.evaluate(space):
                            return NA
                    except CrdsminiError as exc:
                        log.warning("Failed checking relevance for %r %r with expr %r : %s",
                                    self.instrument, self.filekind, self._relevance.text, exc)
            if self._precondition is not None or self._parkey_relevance:
                header = self.preprocess(header)
        try:
            choice = self.selector.find(header)  # failures come back as error objects
        except CrdsminiError as exc:
            return _Failure(exc, header)
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            # CRDS turns any exception of a lookup into "NOT FOUND <text>"; selectors answer
            # typed errors for every case the spec names, this keeps odd data equally safe.
            return _Failure(OtherError(str(exc)), header)
        if isinstance(choice, str):  # _terminal, inlined on the hot path: one probe
            return _TERMINAL_OUTCOMES.get(choice, choice)
        if isinstance(choice, CrdsminiError):
            return _Failure(choice, header)
        return choice

    def _relevant(self, header: Mapping[str, Any], space: dict[str, Any] | None, values: tuple) -> bool:
        """rmap_relevance evaluated (a failure logs and counts as relevant), and remembered."""
        try:
            relevant = bool(self._relevance.evaluate(_namespace(header) if space is None else space))
        except CrdsminiError as exc:
            log.warning("Failed checking relevance for %r %r with expr %r : %s",
                        self.instrument, self.filekind, self._relevance.text, exc)
            return True
        if len(self._relevance_memo) < 4096 and _rememberable(values):
            self._relevance_memo[values] = relevant
        return relevant

    def recover(self, failure: _Failure) -> Any:
        """CRDS's rules after a failed selection: do-not-reprocess, fallback hook, and
        ``reffile_required``; raises the selector's error when none applies."""
        outcome = self.recovered(failure)
        if outcome is failure.error:
            raise failure.error.detached()  # it may be remembered and shared
        return outcome

    def recovered(self, failure: _Failure) -> Any:
        """``recover`` that returns the selector's error object instead of raising it (bulk
        lookups share one error between many headers: raising it would grow its traceback)."""
        header = failure.header
        if self.plugin.dnr_check is not None and self.plugin.dnr_check(header):
            return NA
        choice = self._try_fallback(header)
        if choice is None:
            if self._failure_is_na:
                return NA
            return failure.error
        return self._terminal(choice)

    @staticmethod
    def _terminal(choice: Any) -> Any:
        if isinstance(choice, str):
            if choice in NA_VALUES:
                return NA
            if choice in OMIT_VALUES:
                return OMITTED
        return choice

    def _try_fallback(self, header: Mapping[str, Any]) -> Any:
        if self._fallback is None:
            return None
        try:
            fallback = self._fallback(self, header)
        except CrdsminiError:
            return None
        if fallback is None:
            return None
        minimized = {key: fallback.get(key, "UNDEFINED") for key in self.required_parkeys}
        try:
            return self.selector.choose(self.map_irrelevant_parkeys_to_na(minimized))
        except CrdsminiError:
            return None

    def select(self, header: Mapping[str, Any], space: dict[str, Any] | None = None) -> Any:
        """Like ``get_best_ref`` but failures raise typed crdsmini errors.

        ``space``: the header's expression namespace, when a context already built it.
        """
        outcome = self.apply_rules(header, space)
        if type(outcome) is _Failure:
            outcome = self.recover(outcome)
        if outcome is NA:
            return NOT_FOUND_NA
        if outcome is OMITTED:
            return None
        return outcome

    def get_best_ref(self, header: Mapping[str, Any]) -> Any:
        """Exactly CRDS's answer: a file name, None (OMIT), a tuple, or "NOT FOUND ..."."""
        try:
            outcome = self.apply_rules(header)  # select(), inlined
            if type(outcome) is _Failure:
                # recover() without its raise: the unrecovered error is answered directly.
                error = outcome.error
                outcome = self.recovered(outcome)
                if outcome is error:
                    return "NOT FOUND " + error.message
        except CrdsminiError as exc:
            return "NOT FOUND " + exc.message
        if outcome is NA:
            return NOT_FOUND_NA
        if outcome is OMITTED:
            return None
        return outcome

    def reference_names(self) -> list[str]:
        """Every file name the rules can return, sorted."""
        names = set()
        for terminal in _terminals(self.selector):
            if isinstance(terminal, str):
                if terminal not in NA_VALUES and terminal not in OMIT_VALUES:
                    names.add(terminal)
            elif isinstance(terminal, (tuple, list)):
                names.update(t for t in terminal if isinstance(t, str))
            elif isinstance(terminal, dict):
                names.update(t for t in terminal.values() if isinstance(t, str))
        return sorted(names)

    def mapping_names(self) -> list[str]:
        return [self.name]


def _terminals(selector: Any) -> Iterable[Any]:
    if isinstance(selector, Selector):
        yield from selector.walk_terminals()
    else:
        yield selector


def _as_error(error: CrdsminiError) -> CrdsminiError:
    return error


def _as_text(error: CrdsminiError) -> str:
    """An error as CRDS's ``get_best_references`` reports it."""
    return "NOT FOUND " + error.message


class InstrumentContext(Mapping_):
    """An .imap: one rmap (or N/A / OMIT) per reference type."""

    kind = "imap"
    _required_header = Mapping_._required_header + ("instrument",)

    def __init__(self, source: MappingSource, path: Path | None, selections: Mapping[str, Any]) -> None:
        super().__init__(source, path)
        self.instrument = str(self.header_value("instrument"))
        self.selections: dict[str, Any] = dict(selections)  # filekind (lower) -> rmap or special str
        self._needs_namespace = any(isinstance(choice, ReferenceMapping) and choice.needs_namespace
                                    and choice._relevance_names is None for choice in self.selections.values())

    def get_rmap(self, filekind: str) -> ReferenceMapping:
        choice = self.selections.get(filekind.lower())
        if not isinstance(choice, ReferenceMapping):
            raise UnknownReftypeError(f"Unknown reference type {filekind.lower()!r}", keyword=filekind)
        return choice

    def required_parkeys(self, instrument: str | None = None) -> tuple[str, ...]:
        """The imap's own parkey plus every rmap's required parkeys, in first-seen order."""
        keys: dict[str, None] = dict.fromkeys(self.parkey if isinstance(self.parkey, (tuple, list)) else ())
        for choice in self.selections.values():
            if isinstance(choice, ReferenceMapping):
                keys.update(dict.fromkeys(choice.required_parkeys))
        return tuple(keys)

    def _filekinds(self, include: Iterable[str] | None) -> list[str]:
        if not include:
            return list(self.selections)
        return [str(kind).lower() for kind in include]

    def _choices(self, include: Iterable[str] | None) -> Iterable[tuple[str, Any]]:
        """(filekind, rmap or special string, None when unknown) per ``_filekinds``."""
        if not include:
            return self.selections.items()
        return [(kind, self.selections.get(kind)) for kind in self._filekinds(include)]

    def select_references(self, header: Mapping[str, Any], include: Iterable[str] | None = None) -> dict[str, Any]:
        """Per filekind: the answer, or the crdsmini error that CRDS would turn into a string.

        OMIT types are absent; N/A types map to "NOT FOUND n/a".  An error may be one the
        rules remember and share between lookups: to raise it, raise ``error.detached()``.
        """
        return self._selected(header, include, _as_error)

    def _selected(self, header: Mapping[str, Any], include: Iterable[str] | None,
                  failed: Callable[[CrdsminiError], Any]) -> dict[str, Any]:
        """``select_references`` with each error stored as ``failed(error)``: the error
        itself, or its CRDS text for ``get_best_references`` (no second dict to build)."""
        results: dict[str, Any] = {}
        # One expression namespace for all the rmaps: it depends on the header only.
        space = _namespace(header) if self._needs_namespace else None
        for filekind, choice in self._choices(include):
            if type(choice) is not ReferenceMapping:
                self._select_special(results, filekind, choice, header, space, failed)
                continue
            try:
                outcome = choice.apply_rules(header, space)  # choice.select(), inlined
                if type(outcome) is _Failure:
                    error = outcome.error  # recover() without its raise
                    outcome = choice.recovered(outcome)
                    if outcome is error:
                        results[filekind] = failed(error)
                        continue
            except CrdsminiError as exc:
                results[filekind] = failed(exc)
                continue
            if outcome is NA:
                results[filekind] = NOT_FOUND_NA
            elif outcome is not OMITTED:
                results[filekind] = outcome
        return results

    def _select_special(self, results: dict[str, Any], filekind: str, choice: Any, header: Mapping[str, Any],
                        space: dict[str, Any] | None, failed: Callable[[CrdsminiError], Any]) -> None:
        """``select_references`` for a filekind that is not a plain rmap: unknown, N/A,
        OMIT, or a subclass of ReferenceMapping (kept off the inlined path)."""
        if choice is None and filekind not in self.selections:
            results[filekind] = failed(UnknownReftypeError(f"Unknown reference type {filekind!r}", keyword=filekind))
            return
        if isinstance(choice, str):
            if choice in NA_VALUES:
                results[filekind] = NOT_FOUND_NA
            elif choice not in OMIT_VALUES:
                results[filekind] = failed(MappingError(f"bad selection {choice!r} for {filekind!r}"))
            return
        try:
            answer = choice.select(header, space)
        except CrdsminiError as exc:
            results[filekind] = failed(exc)
            return
        if answer is not None:
            results[filekind] = answer

    def get_best_references(self, header: Mapping[str, Any], include: Iterable[str] | None = None) -> dict[str, Any]:
        """Exactly CRDS's dict: lower-case filekinds, failures as "NOT FOUND ..." strings."""
        return self._selected(header, include, _as_text)

    def reference_names(self) -> list[str]:
        names: set[str] = set()
        for choice in self.selections.values():
            if isinstance(choice, ReferenceMapping):
                names.update(choice.reference_names())
        return sorted(names)

    def mapping_names(self) -> list[str]:
        names = {self.name}
        for choice in self.selections.values():
            if isinstance(choice, ReferenceMapping):
                names.add(choice.name)
        return sorted(names)

    def minimize_header(self, header: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, str]:
        """The conditioned top-level header (rules-language §3.1 steps 2–3).

        Keys are upper-cased first (so ``Detector`` is found), then exactly the required
        parkeys are kept (absent ones as ``UNDEFINED``) and every value conditioned.
        """
        upper = {str(key).upper(): value for key, value in header.items()}
        minimized = {}
        for key in list(self.required_parkeys()) + list(extra):
            minimized[key.upper()] = condition_value(upper.get(key.upper(), "UNDEFINED"))
        return minimized


class PipelineContext(Mapping_):
    """A .pmap: one imap per instrument."""

    kind = "pmap"

    def __init__(self, source: MappingSource, path: Path | None, selections: Mapping[str, InstrumentContext]) -> None:
        super().__init__(source, path)
        self.selections: dict[str, InstrumentContext] = dict(selections)  # instrument (lower) -> imap

    @property
    def instrument_key(self) -> str:
        parkey = self.parkey
        return str(parkey[0]) if isinstance(parkey, (tuple, list)) and parkey else "INSTRUME"

    def get_instrument(self, header: Mapping[str, Any]) -> str:
        """The instrument named by the header, lower case (rules-language §3.2)."""
        key = self.instrument_key
        for candidate in (key.upper(), key.lower()) + _INSTRUMENT_KEYS:
            if candidate in header and str(header[candidate]).upper() != "UNDEFINED":
                instrument = str(header[candidate]).lower()
                return _INSTRUMENT_ALIASES.get(instrument, instrument)
        raise MissingKeyError(f"Missing {key!r} keyword in header for determining instrument.", keyword=key)

    def get_imap(self, instrument: str) -> InstrumentContext:
        imap = self.selections.get(instrument.lower())
        if imap is None:
            raise UnknownInstrumentError(f"Unknown instrument {instrument!r} for context {self.name!r}",
                                         keyword=self.instrument_key)
        return imap

    def required_parkeys(self, instrument: str) -> tuple[str, ...]:
        imap = self.get_imap(instrument)
        return tuple(dict.fromkeys((self.instrument_key,) + imap.required_parkeys()))

    def select_references(self, header: Mapping[str, Any], include: Iterable[str] | None = None) -> dict[str, Any]:
        """Per filekind answer or error (see InstrumentContext.select_references); a
        missing/unknown instrument raises."""
        return self.get_imap(self.get_instrument(header)).select_references(header, include)

    def get_best_references(self, header: Mapping[str, Any], include: Iterable[str] | None = None) -> dict[str, Any]:
        """Exactly CRDS's ``PipelineContext.get_best_references``: raw header, no conditioning."""
        return self.get_imap(self.get_instrument(header)).get_best_references(header, include)

    def minimize_header(self, header: Mapping[str, Any]) -> dict[str, str]:
        """The conditioned, minimised header CRDS's ``getrecommendations`` looks up with."""
        imap = self.get_imap(self.get_instrument({str(k).upper(): v for k, v in header.items()}))
        return imap.minimize_header(header, extra=(self.instrument_key,))

    def reference_names(self) -> list[str]:
        names: set[str] = set()
        for imap in self.selections.values():
            names.update(imap.reference_names())
        return sorted(names)

    def mapping_names(self) -> list[str]:
        names = {self.name}
        for imap in self.selections.values():
            names.update(imap.mapping_names())
        return sorted(names)
