"""Reading a one-off dyno's command as `sh -c` would, for the shapes the
README lists: statements joined by `;`, `&&`, `||` or newlines; words
with single and double quotes and backslashes; `$?`; the builtins echo,
exit, true, false and `:`; `exec` dropped. Anything else (pipes,
redirections, subshells) makes the whole string one program.

plan() turns a command into a timeline: [(at_ms, line)...] and the exit
status with its time, asking `lookup(command_text)` what each program
prints, how long it takes and how it exits.
"""

STATUS = object()  # stands for `$?` inside a word until it is run


class Unsupported(Exception):
    pass


def _split(cmd):
    """[(connector, [word...])], connector None, ';', '&&' or '||';
    a word is a list of str and STATUS parts."""
    stmts, words, cur = [], [], None
    conn = None
    i, n = 0, len(cmd)

    def end_word():
        nonlocal cur
        if cur is not None:
            words.append(cur)
            cur = None

    def end_stmt(next_conn):
        nonlocal words, conn
        end_word()
        if words:
            stmts.append((conn, words))
        elif next_conn in ('&&', '||'):
            raise Unsupported('empty statement')
        words = []
        conn = next_conn if stmts else None

    while i < n:
        c = cmd[i]
        if c in ' \t':
            end_word()
            i += 1
        elif c in ';\n':
            end_stmt(';')
            i += 1
        elif cmd.startswith('&&', i) or cmd.startswith('||', i):
            end_stmt(cmd[i:i + 2])
            i += 2
        elif c in '|&<>()`{}':
            raise Unsupported(c)
        elif c == '#' and cur is None:
            while i < n and cmd[i] != '\n':
                i += 1
        elif c == "'":
            j = cmd.find("'", i + 1)
            if j < 0:
                raise Unsupported('unterminated quote')
            cur = (cur or []) + [cmd[i + 1:j]]
            i = j + 1
        elif c == '"':
            cur = cur or []
            i += 1
            while True:
                if i >= n:
                    raise Unsupported('unterminated quote')
                d = cmd[i]
                if d == '"':
                    i += 1
                    break
                if d == '\\' and i + 1 < n and cmd[i + 1] in '$`"\\\n':
                    cur.append(cmd[i + 1])
                    i += 2
                elif d == '$' and cmd.startswith('$?', i):
                    cur.append(STATUS)
                    i += 2
                elif d == '`' or cmd.startswith('$(', i):
                    raise Unsupported('substitution')
                else:
                    cur.append(d)
                    i += 1
        elif c == '\\':
            if i + 1 < n and cmd[i + 1] != '\n':
                cur = (cur or []) + [cmd[i + 1]]
            i += 2
        elif cmd.startswith('$?', i):
            cur = (cur or []) + [STATUS]
            i += 2
        elif cmd.startswith('$(', i):
            raise Unsupported('substitution')
        else:
            cur = (cur or []) + [c]
            i += 1
    end_stmt(None)
    if conn is not None and conn != ';':
        raise Unsupported('dangling connector')
    return stmts


def _text(word, status):
    return ''.join(str(status) if p is STATUS else p for p in word)


def plan(cmd, lookup, default_ms=100):
    """Runs `cmd` on paper. Returns (steps, status, end_ms): steps is a
    list of (at_ms, line) in time order. lookup(text) returns
    (lines, exit, duration_ms) or None for the default program."""
    try:
        stmts = _split(cmd)
    except Unsupported:
        stmts = [(None, [[cmd]])]
    steps, status, t = [], 0, 0
    for conn, words in stmts:
        if conn == '&&' and status != 0:
            continue
        if conn == '||' and status == 0:
            continue
        argv = [_text(w, status) for w in words]
        if argv[0] == 'exec' and len(argv) > 1:
            argv = argv[1:]
        name = argv[0]
        if name == 'echo':
            args = argv[1:]
            if args and args[0] == '-n':
                args = args[1:]
            steps.append((t, ' '.join(args)))
            status = 0
        elif name in ('true', ':'):
            status = 0
        elif name == 'false':
            status = 1
        elif name == 'exit':
            if len(argv) > 1:
                try:
                    status = int(argv[1]) & 255
                except ValueError:
                    status = 2
            return steps, status, t
        else:
            text = ' '.join(argv)
            found = lookup(text)
            if found is None:
                found = (['running ' + text], 0, default_ms)
            lines, code, ms = found
            steps.extend((t, line) for line in lines)
            t += max(0, int(ms))
            status = int(code) & 255
    return steps, status, t
