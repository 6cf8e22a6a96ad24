"""Assertions shared by the bad-input tests of every command."""


def assert_one_sentence(result, *fragments: str, code: int = 1) -> str:
    """The command failed on purpose (SystemExit, not an escaped exception) with one 'error:' line.

    ``code`` is 1 where the files, camera or weights were at fault and 2 where the command line was
    (``fkd.model.errors``): the same for all five commands.
    """
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout.strip() == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
