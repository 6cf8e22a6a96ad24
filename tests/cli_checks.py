"""Assertions shared by the bad-input tests of every command."""


def assert_one_sentence(result, *fragments: str) -> str:
    """The command failed on purpose (SystemExit, not an escaped exception) with one 'error:' line."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout.strip() == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
