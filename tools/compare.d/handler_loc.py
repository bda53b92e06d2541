"""handler_loc: lines of each saga style's own handler code in services/*/*.c.

The rule, read from the code rather than written down per style:
  1. A shop service gives shop_service_main its setup function as
     `.register_handlers = NAME` (services/common/shop_svc.h). A file with
     no such function is not a shop service and is skipped.
  2. That function is read once per style with its style parameter set to
     the style's constant (the names come from enum shop_style in
     services/common/shop_domain.h): `style == SHOP_STYLE_X`, `!=`, `!`,
     `&&`, `||`, `?:`, `if`/`else` and `return` are followed, every other
     condition may go either way. The functions of the same file that the
     code a style runs names (handlers given to shop_on_*, request handlers,
     the saga's end and definition functions) are what that style registers.
  3. Each style reaches those functions and, through the calls in their
     bodies, the functions of the same file they use.
  4. A style's handler code is what it reaches less what every style
     reaches: the business steps shared by all styles (reserve, freeze,
     award, finish ...) and the request handlers do not count.
  5. A function's lines are its non-blank lines, signature to closing
     brace, once comments are removed.
Style tests outside the setup function (a shared function that branches on
a style it was given) are not followed: such a function counts as shared.
"""
import os
import re

TYPE_WORDS = {
    "static", "const", "volatile", "struct", "enum", "union", "unsigned", "signed", "int",
    "char", "short", "long", "float", "double", "void", "bool", "_Bool", "register", "extern",
    "inline",
}
OPS = sorted("""<<= >>= ... -> ++ -- << >> <= >= == != && || += -= *= /= %= &= ^= |=
    + - * / % & | ^ ~ ! < > = ? : , ; ( ) [ ] { } .""".split(), key=len, reverse=True)


class ReadError(Exception):
    """The setup code uses a construct this reader does not follow."""


def strip(src):
    """Source with comments, preprocessor lines and the insides of string and
    character literals blanked (newlines kept, so line numbers hold)."""
    out = []
    i, n = 0, len(src)
    at_line_start = True
    while i < n:
        c = src[i]
        if at_line_start and c == "#":
            # A directive, with its continuation lines.
            while i < n and src[i] != "\n":
                if src[i] == "\\" and i + 1 < n and src[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        if c == "/" and src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
            continue
        if c == "/" and src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", src[i + 1:j]) + c)
            i = j + 1
            at_line_start = False
            continue
        out.append(c)
        if c == "\n":
            at_line_start = True
        elif not c.isspace():
            at_line_start = False
        i += 1
    return "".join(out)


def tokens(text, line0=1):
    """(kind, text, line) for identifiers, numbers, strings and punctuators."""
    out = []
    i, n, line = 0, len(text), line0
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_]\w*").match(text, i)
            out.append(("id", m.group(), line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[0-9][\w.]*").match(text, i)
            out.append(("num", m.group(), line))
            i = m.end()
        elif c in "\"'":
            j = text.index(c, i + 1)
            out.append(("str", text[i:j + 1], line))
            line += text.count("\n", i, j)
            i = j + 1
        else:
            for op in OPS:
                if text.startswith(op, i):
                    out.append(("op", op, line))
                    i += len(op)
                    break
            else:
                raise ReadError("line %d: unexpected character %r" % (line, c))
    return out


class Function:
    def __init__(self, name, params, body, loc, line):
        self.name, self.params, self.body, self.loc, self.line = name, params, body, loc, line


def functions(text):
    """The top-level function definitions of stripped source, by name."""
    found = {}
    depth, last_end, i, n = 0, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if depth == 0:
                j = i - 1
                while j >= 0 and text[j].isspace():
                    j -= 1
                if j >= 0 and text[j] == ")":
                    close, k, pd = j, j, 0
                    while k >= 0:
                        pd += {")": 1, "(": -1}.get(text[k], 0)
                        if pd == 0:
                            break
                        k -= 1
                    m = re.search(r"([A-Za-z_]\w*)\s*$", text[:k])
                    end = matching(text, i)
                    start = last_end
                    while start < i and text[start].isspace():
                        start += 1
                    if m:
                        whole = text[start:end + 1]
                        loc = sum(1 for ln in whole.split("\n") if ln.strip())
                        found[m.group(1)] = Function(m.group(1), text[k + 1:close],
                                                     (text[i + 1:end], text.count("\n", 0, i) + 1),
                                                     loc, text.count("\n", 0, start) + 1)
                    i = end + 1
                    last_end = i
                    continue
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                last_end = i + 1
        elif c == ";" and depth == 0:
            last_end = i + 1
        i += 1
    return found


def matching(text, i):
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ReadError("unbalanced braces")


# ---- An expression and statement reader for the setup function ----------

PREC = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", "<=", ">", ">="),
        ("<<", ">>"), ("+", "-"), ("*", "/", "%")]
ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "<<=", ">>="}


class Parser:
    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("eof", "", self.t[-1][2] if self.t else 0)

    def take(self, text=None):
        tok = self.peek()
        if text is not None and tok[1] != text:
            raise ReadError("line %d: expected %r, found %r" % (tok[2], text, tok[1]))
        self.i += 1
        return tok

    def at(self, text):
        return self.peek()[1] == text and self.peek()[0] == "op"

    # expressions: nodes are tuples whose first item names the kind
    def expr(self):
        e = self.assign()
        while self.at(","):
            self.take()
            e = ("seq", e, self.assign())
        return e

    def assign(self):
        c = self.cond()
        if self.peek()[0] == "op" and self.peek()[1] in ASSIGN:
            self.take()
            return ("assign", c, self.assign())
        return c

    def cond(self):
        c = self.binary(0)
        if self.at("?"):
            self.take()
            a = self.expr()
            self.take(":")
            return ("?", c, a, self.cond())
        return c

    def binary(self, level):
        if level == len(PREC):
            return self.unary()
        e = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in PREC[level]:
            op = self.take()[1]
            e = (op if op in ("&&", "||", "==", "!=") else "op", e, self.binary(level + 1))
        return e

    def is_cast(self):
        # (type words or a typedef name, stars) followed by an operand
        j, words = 1, 0
        while self.peek(j)[0] == "id":
            j += 1
            words += 1
        while self.peek(j)[1] == "*":
            j += 1
        if words == 0 or self.peek(j)[1] != ")":
            return False
        if words == 1 and self.peek(1)[1] not in TYPE_WORDS and self.peek(j - 1)[1] != "*":
            nxt = self.peek(j + 1)
            return nxt[0] in ("id", "num", "str") or nxt[1] in ("(", "{")
        return True

    def unary(self):
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("!", "-", "+", "~", "*", "&", "++", "--"):
            self.take()
            return ("!" if tok[1] == "!" else "op", self.unary())
        if tok[1] == "sizeof":
            self.take()
            if self.at("(") and self.is_cast():
                while not self.at(")"):
                    self.take()
                self.take()
                return ("leaf",)
            return ("op", self.unary())
        if self.at("(") and self.is_cast():
            while not self.at(")"):
                self.take()
            self.take()
            if self.at("{"):
                return self.init_list()
            return self.unary()
        return self.postfix(self.primary())

    def primary(self):
        tok = self.take()
        if tok[0] == "id":
            return ("id", tok[1], tok[2])
        if tok[0] in ("num", "str"):
            while self.peek()[0] == "str":
                self.take()
            return ("leaf",)
        if tok[1] == "(":
            e = self.expr()
            self.take(")")
            return e
        raise ReadError("line %d: cannot read an expression at %r" % (tok[2], tok[1]))

    def postfix(self, e):
        while True:
            if self.at("("):
                self.take()
                args = []
                while not self.at(")"):
                    args.append(self.assign())
                    if not self.at(")"):
                        self.take(",")
                self.take(")")
                e = ("call", e, args)
            elif self.at("["):
                self.take()
                e = ("op", e, self.expr())
                self.take("]")
            elif self.at(".") or self.at("->"):
                self.take()
                self.take()
                e = ("op", e)
            elif self.at("++") or self.at("--"):
                self.take()
                e = ("op", e)
            else:
                return e

    def init_list(self):
        self.take("{")
        items = []
        while not self.at("}"):
            if self.at("."):
                self.take()
                self.take()
                self.take("=")
            elif self.at("["):
                self.take()
                self.expr()
                self.take("]")
                self.take("=")
            items.append(self.init_list() if self.at("{") else self.assign())
            if not self.at("}"):
                self.take(",")
        self.take("}")
        return ("op",) + tuple(items)

    # statements
    def statement(self):
        tok = self.peek()
        if tok[1] == "{" and tok[0] == "op":
            self.take()
            body = []
            while not self.at("}"):
                body.append(self.statement())
            self.take()
            return ("block", body)
        if tok[0] == "id" and tok[1] == "if":
            self.take()
            self.take("(")
            c = self.expr()
            self.take(")")
            then = self.statement()
            other = None
            if self.peek()[1] == "else":
                self.take()
                other = self.statement()
            return ("if", c, then, other)
        if tok[0] == "id" and tok[1] == "return":
            self.take()
            e = None if self.at(";") else self.expr()
            self.take(";")
            return ("return", e)
        if tok[0] == "id" and tok[1] in ("for", "while", "do", "switch", "goto", "case",
                                         "default"):
            raise ReadError("line %d: the setup function uses %r, which this reader does not "
                            "follow" % (tok[2], tok[1]))
        if self.at(";"):
            self.take()
            return ("expr", None)
        if self.is_declaration():
            return self.declaration()
        e = self.expr()
        self.take(";")
        return ("expr", e)

    def is_declaration(self):
        a, b = self.peek(), self.peek(1)
        if a[0] != "id":
            return False
        if a[1] in TYPE_WORDS:
            return True
        if b[0] == "id":
            return True
        return b[1] == "*" and self.peek(2)[0] == "id" and self.peek(3)[1] in ("=", ";", ",", "[")

    def declaration(self):
        inits = []
        depth = 0
        while True:
            tok = self.peek()
            if tok[0] == "eof":
                raise ReadError("line %d: unterminated declaration" % tok[2])
            if depth == 0 and tok[1] == ";":
                self.take()
                return ("expr", ("op",) + tuple(inits))
            if depth == 0 and tok[1] == "=":
                self.take()
                inits.append(self.init_list() if self.at("{") else self.assign())
                continue
            if tok[1] in ("(", "["):
                depth += 1
            elif tok[1] in (")", "]"):
                depth -= 1
            self.take()


class Walk:
    """Runs a statement tree with the style variable fixed and collects the
    identifiers of the code that runs. Conditions are true, false or None
    (not known: both ways are taken)."""

    def __init__(self, var, consts, style_const):
        self.var, self.consts, self.style = var, consts, style_const
        self.seen = set()

    def value(self, e):
        if e is None:
            return None
        kind = e[0]
        if kind in ("==", "!="):
            a, b = e[1], e[2]
            for x, y in ((a, b), (b, a)):
                if x[0] == "id" and x[1] == self.var and y[0] == "id" and y[1] in self.consts:
                    same = y[1] == self.style
                    return same if kind == "==" else not same
            self.value(a)
            self.value(b)
            return None
        if kind == "&&":
            left = self.value(e[1])
            if left is False:
                return False
            right = self.value(e[2])
            if right is False:
                return False
            return True if left is True and right is True else None
        if kind == "||":
            left = self.value(e[1])
            if left is True:
                return True
            right = self.value(e[2])
            if right is True:
                return True
            return False if left is False and right is False else None
        if kind == "!":
            v = self.value(e[1])
            return None if v is None else not v
        if kind == "?":
            c = self.value(e[1])
            if c is not False:
                self.value(e[2])
            if c is not True:
                self.value(e[3])
            return None
        if kind == "id":
            self.seen.add(e[1])
            return None
        if kind == "call":
            self.value(e[1])
            for a in e[2]:
                self.value(a)
            return None
        for part in e[1:]:
            if isinstance(part, tuple):
                self.value(part)
        return None

    def run(self, s):
        """True when the statement returns on every path."""
        kind = s[0]
        if kind == "block":
            for x in s[1]:
                if self.run(x):
                    return True
            return False
        if kind == "if":
            c = self.value(s[1])
            if c is True:
                return self.run(s[2])
            if c is False:
                return self.run(s[3]) if s[3] else False
            a = self.run(s[2])
            b = self.run(s[3]) if s[3] else False
            return a and b
        if kind == "return":
            self.value(s[1])
            return True
        self.value(s[1])
        return False


def style_names(root):
    """enum shop_style: constant -> style name ("SHOP_STYLE_TCC" -> "tcc")."""
    path = os.path.join(root, "services", "common", "shop_domain.h")
    with open(path) as f:
        text = strip(f.read())
    m = re.search(r"enum\s+shop_style\s*\{([^}]*)\}", text)
    if not m:
        raise ReadError("%s: no enum shop_style" % path)
    out = {}
    for const in re.findall(r"\b(SHOP_STYLE_\w+)\b", m.group(1)):
        if const != "SHOP_STYLE_COUNT":
            out[const] = const[len("SHOP_STYLE_"):].lower()
    return out


def measure(root):
    """{"styles": {style: {"loc": N, "functions": ["file:name (lines)", ...]}},
    "services": [...], "skipped": [...]} for the services under root."""
    consts = style_names(root)
    per_style = {name: {"loc": 0, "functions": []} for name in consts.values()}
    services, skipped = [], []
    base = os.path.join(root, "services")
    for d in sorted(os.listdir(base)):
        sub = os.path.join(base, d)
        if not os.path.isdir(sub):
            continue
        for fn in sorted(os.listdir(sub)):
            if not fn.endswith(".c"):
                continue
            rel = "services/%s/%s" % (d, fn)
            with open(os.path.join(sub, fn)) as f:
                text = strip(f.read())
            m = re.search(r"\.\s*register_handlers\s*=\s*([A-Za-z_]\w*)", text)
            if not m:
                skipped.append(rel)
                continue
            try:
                reached = file_styles(text, m.group(1), consts)
            except ReadError as e:
                raise ReadError("%s: %s" % (rel, e))
            services.append(rel)
            funcs = functions(text)
            shared = set.intersection(*reached.values())
            for style, names in reached.items():
                for name in sorted(names - shared, key=lambda x: funcs[x].line):
                    per_style[style]["loc"] += funcs[name].loc
                    per_style[style]["functions"].append(
                        "%s:%d %s (%d lines)" % (rel, funcs[name].line, name, funcs[name].loc))
    return {"styles": per_style, "services": services, "skipped": skipped}


def file_styles(text, setup, consts):
    """style name -> the functions of this file that style reaches."""
    funcs = functions(text)
    if setup not in funcs:
        raise ReadError("register_handlers names %s, which is not defined here" % setup)
    f = funcs[setup]
    m = re.search(r"\bshop_style\s+([A-Za-z_]\w*)", f.params)
    if not m:
        raise ReadError("%s takes no shop_style parameter" % setup)
    body = Parser(tokens(f.body[0], f.body[1]))
    tree = []
    while body.peek()[0] != "eof":
        tree.append(body.statement())
    calls = {}
    for name, g in funcs.items():
        calls[name] = {t[1] for t in tokens(g.body[0]) if t[0] == "id" and t[1] in funcs} - {name}
    out = {}
    for const, style in consts.items():
        w = Walk(m.group(1), consts, const)
        w.run(("block", tree))
        todo = [n for n in w.seen if n in funcs and n != setup]
        reached = set()
        while todo:
            n = todo.pop()
            if n not in reached:
                reached.add(n)
                todo.extend(calls[n] - reached)
        out[style] = reached
    return out


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else "."), indent=2))
