"""The search language, parsed by us: Gmail/Google Vault style.

    from: to: cc: bcc: subject: body: filename: messageid:   words or "phrases"
    has:attachment   size:>1M (<, >=, <=, =; K M G are powers of 1024; bare: at least)
    before:D after:D on:D          the received (internal) date of the archived copy
    sentbefore:D sentafter:D sent:D   the Date: header
                      D a day (YYYY-MM-DD) or an ISO time, in the site's zone unless one
                      follows (2026-01-02+02:00); before: is exclusive, after: inclusive,
                      on: the whole day (the rule: vault/dates.py)
    in:<folder>       any name the folder ever had, or its last component (in:Sent, in:INBOX)
    custodian:<user>  mail in that user's folders
    bare words and "phrases" (in from, to, cc, subject, body and attachment names)
    word*             words starting so (mon* finds money, monday); one word, * at its end
    is:flagged is:seen is:deleted   an archived copy's flag, as at the search's time (flags.py)
    AND OR NOT - ( )  implicit AND between terms; NOT binds tightest, then AND, then OR

``parse(text, zone)`` gives an AST or raises ``QuerySyntaxError`` naming the position and the reason.
in:/custodian: are about where an archived copy sits, and before:/after:/on: about when it was
received, not about the content: ``bind`` replaces them with true/false for one group of
folders or one item (scope.py), and ``compile_query(ast, schema)``
makes a Tantivy query of what is left.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from vault import dates
from vault.index.words import query_terms

TEXT_OPERATORS = ("from", "to", "cc", "bcc", "subject", "body", "filename")
DATE_OPERATORS = ("before", "after", "on", "sentbefore", "sentafter", "sent")
OPERATORS = (*TEXT_OPERATORS, "messageid", "has", "size", *DATE_OPERATORS, "in", "custodian", "is")
FLAGS = {"flagged": "\\Flagged", "seen": "\\Seen", "deleted": "\\Deleted"}  # is:NAME -> IMAP flag
_SIZE = re.compile(r"^(>=|<=|>|<|=)?(\d+(?:\.\d+)?)([kmg]b?|b)?$", re.I | re.A)
_UNITS = {None: 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_WORDS = re.compile(r"[^\W_]+")
MAX_SIZE = (1 << 63) - 1  # Tantivy's integers are i64; "bigger than that" matches nothing anyway
# How deep parentheses and NOT/- may nest: the parser, bind() and the Tantivy query recurse per
# level, and no person writes more than a handful ('(' * 3000 was a RecursionError)
MAX_DEPTH = 64


class QuerySyntaxError(ValueError):
    def __init__(self, position: int, reason: str):
        super().__init__(f"position {position}: {reason}")
        self.position = position
        self.reason = reason


# ------------------------------------------------------------ AST


@dataclass(frozen=True)
class Words:
    field: str | None  # None: the bare-word fields
    text: str
    phrase: bool = False
    prefix: bool = False  # word*: the last (only) term is a prefix


@dataclass(frozen=True)
class Size:
    op: str
    bytes: int


@dataclass(frozen=True)
class When:
    op: str  # "before" (exclusive) | "after" (inclusive)
    at: datetime
    basis: str = dates.RECEIVED  # or dates.SENT: the Date: header


@dataclass(frozen=True)
class HasAttachment:
    pass


@dataclass(frozen=True)
class MessageId:
    value: str


@dataclass(frozen=True)
class Where:
    kind: str  # "in" | "custodian"
    value: str


@dataclass(frozen=True)
class Is:
    flag: str  # the IMAP flag (\\Flagged...): about an archived copy, like Where (flags.py)


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple


@dataclass(frozen=True)
class Or:
    nodes: tuple


Node = Words | Size | When | HasAttachment | MessageId | Where | Is | Not | And | Or


# ------------------------------------------------------------ lexer


@dataclass(frozen=True)
class Token:
    kind: str  # WORD QUOTED LPAREN RPAREN MINUS
    text: str
    pos: int  # 1-based, for people
    glued: bool = False  # QUOTED right after a "field:" WORD


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(Token("LPAREN" if c == "(" else "RPAREN", c, i + 1))
            i += 1
        elif c == "-" and i + 1 < n and not text[i + 1].isspace():
            # "-" starting a term negates it: -word, -"a phrase", -(a OR b), -from:x
            out.append(Token("MINUS", c, i + 1))
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError(i + 1, 'unclosed quote (")')
            glued = (
                bool(out)
                and out[-1].kind == "WORD"
                and out[-1].text.endswith(":")
                and out[-1].pos + len(out[-1].text) - 1 == i
            )
            out.append(Token("QUOTED", text[i + 1 : end], i + 1, glued))
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            out.append(Token("WORD", text[i:j], i + 1))
            i = j
    return out


# ------------------------------------------------------------ parser


class _Parser:
    def __init__(self, text: str, zone: tzinfo = UTC):
        self.text = text
        self.zone = zone
        self.toks = tokens(text)
        self.i = 0
        self.depth = 0  # parentheses and NOT/- open around the current term

    def deeper(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(
                tok.pos, f"the query nests parentheses or NOT/- more than {MAX_DEPTH} deep: simplify it"
            )

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def end(self) -> int:
        return len(self.text) + 1

    def parse(self) -> Node:
        if not self.toks:
            raise QuerySyntaxError(1, "empty query")
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise QuerySyntaxError(
                tok.pos, "unexpected ')'" if tok.kind == "RPAREN" else f"unexpected {tok.text!r}"
            )
        return node

    def _is(self, tok: Token | None, word: str) -> bool:
        return tok is not None and tok.kind == "WORD" and tok.text == word

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while self._is(self.peek(), "OR"):
            op = self.take()
            if self._ends_operand(self.peek()):
                raise QuerySyntaxError(op.pos, "OR needs something on its right")
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def _ends_operand(self, tok: Token | None) -> bool:
        return tok is None or tok.kind == "RPAREN" or self._is(tok, "OR") or self._is(tok, "AND")

    def and_expr(self) -> Node:
        nodes = [self.unary()]
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "RPAREN" or self._is(tok, "OR"):
                break
            if self._is(tok, "AND"):
                self.take()
                if self._ends_operand(self.peek()):
                    raise QuerySyntaxError(tok.pos, "AND needs something on its right")
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QuerySyntaxError(self.end(), "query ends where a term was expected")
        if self._is(tok, "NOT") or tok.kind == "MINUS":
            self.take()
            if self._ends_operand(self.peek()):
                raise QuerySyntaxError(tok.pos, f"{tok.text} needs something to negate")
            self.deeper(tok)
            node = Not(self.unary())
            self.depth -= 1
            return node
        if self._is(tok, "AND") or self._is(tok, "OR"):
            raise QuerySyntaxError(tok.pos, f"{tok.text} needs something on its left")
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "LPAREN":
            after = self.peek()
            if after is not None and after.kind == "RPAREN":
                raise QuerySyntaxError(tok.pos, "empty parentheses")
            self.deeper(tok)
            node = self.or_expr()
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise QuerySyntaxError(tok.pos, 'unclosed "("')
            self.take()
            return node
        if tok.kind == "RPAREN":
            raise QuerySyntaxError(tok.pos, "unexpected ')'")
        if tok.kind == "QUOTED":
            return self.words(None, tok.text, True, tok.pos)
        if ":" in tok.text and not tok.text.startswith(":"):
            name, value = tok.text.split(":", 1)
            name = name.lower()
            if name not in OPERATORS:
                raise QuerySyntaxError(
                    tok.pos,
                    f"unknown operator {name + ':'!r} (known: {', '.join(o + ':' for o in OPERATORS)})",
                )
            phrase = False
            if not value:
                nxt = self.peek()
                if nxt is not None and nxt.kind == "QUOTED" and nxt.glued:
                    self.take()
                    value, phrase = nxt.text, True
                else:
                    raise QuerySyntaxError(tok.pos, f"{name}: needs a value")
            return self.operator(name, value, phrase, tok.pos)
        return self.words(None, tok.text, False, tok.pos)

    def words(self, field: str | None, text: str, phrase: bool, pos: int) -> Node:
        prefix = not phrase and text.endswith("*")
        if prefix:
            text = text.rstrip("*")
            if len(analyse(text)) != 1 or not text[-1:].isalnum():
                raise QuerySyntaxError(pos, f"{text}*: a prefix is one word with * at its end (mon*)")
        if not _WORDS.search(text):
            raise QuerySyntaxError(pos, f"nothing searchable in {text!r}")
        return Words(field, text, phrase, prefix)

    def operator(self, name: str, value: str, phrase: bool, pos: int) -> Node:
        vpos = pos + len(name) + 1
        if name in TEXT_OPERATORS:
            return self.words(name, value, phrase, vpos)
        if name == "messageid":
            return MessageId(value.strip().strip("<>"))
        if name == "has":
            if value.lower() not in ("attachment", "attachments"):
                raise QuerySyntaxError(vpos, f"has:{value} is not known (has:attachment is)")
            return HasAttachment()
        if name == "size":
            return parse_size(value, vpos)
        if name in DATE_OPERATORS:
            return date_term(name, value, vpos, self.zone)
        if name == "is":
            if value.lower() not in FLAGS:
                raise QuerySyntaxError(
                    vpos, f"is:{value} is not known ({', '.join('is:' + f for f in FLAGS)})"
                )
            return Is(FLAGS[value.lower()])
        if not value.strip():
            raise QuerySyntaxError(vpos, f"{name}: needs a value")
        return Where(name, value)


def parse_size(value: str, pos: int) -> Size:
    m = _SIZE.match(value.strip())
    if not m:
        raise QuerySyntaxError(pos, f"size:{value} is not a size (e.g. size:>1M, size:<500K)")
    op, number, unit = m.group(1) or ">=", Decimal(m.group(2)), m.group(3)
    scale = _UNITS[unit[0].lower() if unit else None]
    return Size(op, min(int(number * scale), MAX_SIZE))


def date_term(name: str, value: str, pos: int, zone: tzinfo = UTC) -> Node:
    """before:/after:/on: (received date) and sentbefore:/sentafter:/sent: (Date: header), as
    vault/dates.py reads a date; on:/sent: are the whole day (after its start, before the next)."""
    basis = dates.SENT if name.startswith("sent") else dates.RECEIVED
    op = name.removeprefix("sent") or "on"
    try:
        if op == "before":
            return When("before", dates.before(value, zone), basis)
        if op == "after":
            return When("after", dates.after(value, zone), basis)
        span = dates.on(value, zone)
    except dates.DateError as e:
        raise QuerySyntaxError(pos, str(e)) from None
    return And((When("after", span.start, basis), When("before", span.end, basis)))  # type: ignore[arg-type]


def parse(text: str, zone: tzinfo = UTC) -> Node:
    """The query's AST; bare dates in it are in ``zone`` (the site's: vault/dates.py)."""
    return _Parser(text, zone).parse()


# ------------------------------------------------------------ location clauses


def location_clauses(node: Node) -> list[Where]:
    """The in:/custodian: clauses of a query, each once, in order."""
    return [c for c in copy_clauses(node) if isinstance(c, Where)]


def received_clauses(node: Node) -> list[When]:
    """The before:/after:/on: clauses (the received date of each copy), each once, in order."""
    return [c for c in copy_clauses(node) if isinstance(c, When)]


def copy_clauses(node: Node) -> list:
    """The clauses about an archived copy rather than its content (in:, custodian:, the
    received date), each once, in order."""
    return clauses(
        node, lambda n: isinstance(n, Where) or (isinstance(n, When) and n.basis == dates.RECEIVED)
    )


def clauses(node: Node, wanted: Callable[[Node], bool]) -> list:
    """The clauses of a query that ``wanted`` picks, each once, in order."""
    found: list = []

    def walk(n: Node) -> None:
        if wanted(n):
            if n not in found:
                found.append(n)
        elif isinstance(n, Not):
            walk(n.node)
        elif isinstance(n, (And, Or)):
            for c in n.nodes:
                walk(c)

    walk(node)
    return found


def bind(node: Node, truth: dict) -> Node | bool:
    """The query with each copy clause (``truth``'s keys: Where, received When, Is) replaced by
    its truth for one folder or item, simplified: True or False when the content no longer
    matters, else a content-only query. ``is:`` clauses are bound the same way
    (vault/index/flags.py); a clause not in ``truth`` stays."""
    if isinstance(node, (Where, Is)) or (isinstance(node, When) and node in truth):
        return truth.get(node, node)
    if isinstance(node, Not):
        inner = bind(node.node, truth)
        return (not inner) if isinstance(inner, bool) else Not(inner)
    if isinstance(node, (And, Or)):
        absorbing = isinstance(node, Or)  # True absorbs an OR, False an AND
        rest = []
        for child in node.nodes:
            b = bind(child, truth)
            if b is absorbing:
                return absorbing
            if not isinstance(b, bool):
                rest.append(b)
        if not rest:
            return not absorbing
        return rest[0] if len(rest) == 1 else type(node)(tuple(rest))
    return node


# ------------------------------------------------------------ to Tantivy


def analyse(text: str) -> list[tuple[int, str]]:
    """(position, term) as the index holds them (words.py): alphanumeric runs, lower-cased, long
    ones dropped (their positions left empty, as in the index); CJK runs as their bigrams."""
    return query_terms(text)


# What Tantivy's date field can hold (ns since 1970 in an i64); text.py keeps every indexed
# Date inside it, so clamping a bound to it changes no answer.
DATE_LIMITS = (datetime(1677, 9, 22, tzinfo=UTC), datetime(2262, 4, 11, tzinfo=UTC))


def _clamp(when: datetime) -> datetime:
    return min(max(when, DATE_LIMITS[0]), DATE_LIMITS[1])


def compile_query(node: Node | bool, schema):
    """A Tantivy query for a content-only query (location clauses bound: see ``bind``)."""
    import tantivy

    Q, Occur = tantivy.Query, tantivy.Occur

    def words(field: str, text: str):
        terms = analyse(text)
        if not terms:
            return Q.empty_query()
        if len(terms) == 1:
            return Q.term_query(schema, field, terms[0][1])
        # several tokens in one value ("a phrase", an address, a hyphenated word, a CJK word's
        # bigrams): in order, at their positions (a copy: the stub wants list[str | (pos, term)])
        return Q.phrase_query(schema, field, [*terms])

    def prefix(field: str, text: str):
        # every term of the field that starts so (a regex over the term dictionary: no cap on
        # how many words it expands to, unlike a phrase-prefix query)
        return Q.regex_query(schema, field, re.escape(analyse(text)[0][1]) + ".*")

    def build(n: Node | bool):
        if isinstance(n, Words) and n.prefix:
            from vault.index.schema import BARE_WORD_FIELDS

            fields = [n.field] if n.field is not None else list(BARE_WORD_FIELDS)
            return Q.boolean_query([(Occur.Should, prefix(f, n.text)) for f in fields])
        if isinstance(n, Words):
            if n.field is not None:
                return words(n.field, n.text)
            from vault.index.schema import BARE_WORD_FIELDS

            return Q.boolean_query([(Occur.Should, words(f, n.text)) for f in BARE_WORD_FIELDS])
        if isinstance(n, MessageId):
            return Q.term_query(schema, "messageid", n.value)
        if isinstance(n, HasAttachment):
            return Q.term_query(schema, "attachment", 1)
        if isinstance(n, Size):
            lo = hi = None
            inc_lo = inc_hi = True
            if n.op in (">", ">="):
                lo, inc_lo = n.bytes, n.op == ">="
            elif n.op in ("<", "<="):
                hi, inc_hi = n.bytes, n.op == "<="
            else:
                lo = hi = n.bytes
            return Q.range_query(schema, "size", tantivy.FieldType.Integer, lo, hi, inc_lo, inc_hi)
        if isinstance(n, When):
            if n.basis != dates.SENT:
                raise TypeError(f"{n.op}: is about the received date of a copy: bind it first")
            at = _clamp(n.at)
            if n.op == "before":
                return Q.range_query(schema, "date", tantivy.FieldType.Date, None, at, True, False)
            return Q.range_query(schema, "date", tantivy.FieldType.Date, at, None, True, True)
        if isinstance(n, bool):
            return Q.all_query() if n else Q.empty_query()
        if isinstance(n, Where):
            raise TypeError(f"{n.kind}:{n.value} is about folders: bind it first")
        if isinstance(n, Is):
            raise TypeError(f"is:{n.flag} is about archived copies: bind it first (flags.py)")
        if isinstance(n, Not):
            return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, build(n.node))])
        if isinstance(n, And):
            positives = [
                (Occur.MustNot, build(c.node)) if isinstance(c, Not) else (Occur.Must, build(c))
                for c in n.nodes
            ]
            if all(o == Occur.MustNot for o, _ in positives):
                positives.append((Occur.Must, Q.all_query()))
            return Q.boolean_query(positives)
        if isinstance(n, Or):
            return Q.boolean_query([(Occur.Should, build(c)) for c in n.nodes])
        raise TypeError(f"not a query node: {n!r}")

    return build(node)
